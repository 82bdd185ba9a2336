curl -X GET 'http://localhost:4000/team/list' \
  -H "Authorization: Bearer sk-admin-xxx"
