curl -X POST http://localhost:4000/team/update \
  -H "Authorization: Bearer sk-admin-xxx" \
  -H "Content-Type: application/json" \
  -d '{
    "team_id": "engineering-team",
    "max_budget": 2000.0,
    "models": ["gpt-4", "gpt-3.5-turbo", "claude-2"]
  }'
