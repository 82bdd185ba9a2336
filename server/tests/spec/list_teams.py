import requests

response = requests.get(
    "http://localhost:4000/team/list",
    headers={"Authorization": "Bearer sk-admin-xxx"}
)

teams = response.json()["teams"]
for team in teams:
    print(f"Team: {team['team_alias']}")
    print(f"  Spend: ${team['spend']:.2f} / ${team['max_budget']:.2f}")
    print(f"  Models: {', '.join(team['models'])}")
