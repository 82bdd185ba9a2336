import requests

response = requests.post(
    "http://localhost:4000/team/new",
    headers={"Authorization": "Bearer sk-admin-xxx"},
    json={
        "team_id": "engineering-team",
        "team_alias": "Engineering Team",
        "models": ["gpt-4", "gpt-3.5-turbo"],
        "max_budget": 1000.0,
        "tpm_limit": 1000000,
        "rpm_limit": 10000,
        "budget_duration": "30d"
    }
)

team = response.json()
print(f"Created team: {team['team_id']}")
