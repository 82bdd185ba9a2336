import requests

response = requests.post(
    "http://localhost:4000/team/update",
    headers={"Authorization": "Bearer sk-admin-xxx"},
    json={
        "team_id": "engineering-team",
        "max_budget": 2000.0,
        "tpm_limit": 2000000
    }
)
