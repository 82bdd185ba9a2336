# Create team with strict limits
team_response = requests.post(
    "http://localhost:4000/team/new",
    headers={"Authorization": "Bearer sk-admin-xxx"},
    json={
        "team_id": "startup-team",
        "max_budget": 50.0,        # $50 budget
        "tpm_limit": 100000,       # 100K tokens/min
        "rpm_limit": 1000,         # 1K requests/min
        "budget_duration": "30d"   # Resets monthly
    }
)

# All team members share these limits
