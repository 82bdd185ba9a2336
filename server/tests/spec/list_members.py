import requests

response = requests.get(
    "http://localhost:4000/team/info",
    headers={"Authorization": "Bearer sk-admin-xxx"},
    params={"team_id": "engineering-team"}
)

team = response.json()
for member in team['members']:
    print(f"Member: {member['user_id']}, Key: {member['key']}")
