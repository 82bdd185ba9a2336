curl -X GET 'http://localhost:4000/team/info?team_id=engineering-team' \
  -H "Authorization: Bearer sk-admin-xxx"
