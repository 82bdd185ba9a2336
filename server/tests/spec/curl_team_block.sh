curl -X POST http://localhost:4000/team/block \
  -H "Authorization: Bearer sk-admin-xxx" \
  -H "Content-Type: application/json" \
  -d '{"team_id": "engineering-team"}'
