curl -X POST http://localhost:4000/team/delete \
  -H "Authorization: Bearer sk-admin-xxx" \
  -H "Content-Type: application/json" \
  -d '{"team_ids": ["engineering-team"]}'
