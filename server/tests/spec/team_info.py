import requests

response = requests.get(
    "http://localhost:4000/team/info",
    headers={"Authorization": "Bearer sk-admin-xxx"},
    params={"team_id": "engineering-team"}
)

team = response.json()
print(f"Team: {team['team_alias']}")
print(f"Budget: ${team['spend']:.2f} / ${team['max_budget']:.2f}")
print(f"Members: {len(team['members'])}")
