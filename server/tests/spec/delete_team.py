import requests

response = requests.post(
    "http://localhost:4000/team/delete",
    headers={"Authorization": "Bearer sk-admin-xxx"},
    json={"team_ids": ["engineering-team"]}
)
