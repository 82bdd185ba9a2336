curl -X POST http://localhost:4000/key/generate \
  -H "Authorization: Bearer sk-admin-xxx" \
  -H "Content-Type: application/json" \
  -d '{
    "team_id": "engineering-team",
    "models": ["gpt-4"],
    "duration": "30d"
  }'
