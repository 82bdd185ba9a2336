import requests
import json

BASE_URL = "http://localhost:4000"
ADMIN_KEY = "sk-admin-xxx"

headers = {
    "Authorization": f"Bearer {ADMIN_KEY}",
    "Content-Type": "application/json"
}

# 1. Create a team
team_response = requests.post(
    f"{BASE_URL}/team/new",
    headers=headers,
    json={
        "team_id": "data-science-team",
        "team_alias": "Data Science Team",
        "models": ["gpt-4", "claude-2"],
        "max_budget": 500.0,
        "tpm_limit": 500000,
        "budget_duration": "30d",
        "metadata": {"department": "Data Science"}
    }
)
print(f"Created team: {team_response.json()['team_id']}")

# 2. Create keys for team members
for i in range(3):
    key_response = requests.post(
        f"{BASE_URL}/key/generate",
        headers=headers,
        json={
            "team_id": "data-science-team",
            "user_id": f"ds-user-{i+1}",
            "models": ["gpt-4"],
            "duration": "30d"
        }
    )
    print(f"Created key for user {i+1}")

# 3. Get team info
info_response = requests.get(
    f"{BASE_URL}/team/info",
    headers=headers,
    params={"team_id": "data-science-team"}
)
team = info_response.json()
print(f"\nTeam Info:")
print(f"  Name: {team['team_alias']}")
print(f"  Budget: ${team['spend']:.2f} / ${team['max_budget']:.2f}")
print(f"  Members: {len(team['members'])}")

# 4. Update team budget
update_response = requests.post(
    f"{BASE_URL}/team/update",
    headers=headers,
    json={
        "team_id": "data-science-team",
        "max_budget": 1000.0
    }
)
print("\nUpdated team budget to $1000")

# 5. List all teams
list_response = requests.get(
    f"{BASE_URL}/team/list",
    headers=headers
)
teams = list_response.json()["teams"]
print(f"\nTotal teams: {len(teams)}")
for team in teams:
    print(f"  - {team['team_alias']}: ${team['spend']:.2f} / ${team['max_budget']:.2f}")
