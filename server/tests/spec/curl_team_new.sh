curl -X POST http://localhost:4000/team/new \
  -H "Authorization: Bearer sk-admin-xxx" \
  -H "Content-Type: application/json" \
  -d '{
    "team_id": "engineering-team",
    "team_alias": "Engineering Team",
    "models": ["gpt-4", "gpt-3.5-turbo"],
    "max_budget": 1000.0,
    "tpm_limit": 1000000,
    "rpm_limit": 10000,
    "budget_duration": "30d",
    "metadata": {
      "department": "Engineering",
      "cost_center": "CC-123"
    }
  }'
