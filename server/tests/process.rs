#![recursion_limit = "512"]
//! The `gatehouse` binary as a user runs it: start-up configuration, the admin key, clean
//! shutdown, log hygiene, and the spec's own curl and Python examples, run unmodified except
//! that `http://localhost:4000` and `sk-admin-xxx` point at this test's server.

use serde_json::{json, Value};
use std::{
    io::{BufRead, BufReader, Read},
    path::Path,
    process::{Child, Command, Output, Stdio},
    sync::{mpsc, Arc, Mutex},
    thread,
    time::Duration,
};
use tempfile::TempDir;

const ADMIN_KEY: &str = "sk-admin-process-test-5f1c2a";
const SPEC: &str = include_str!("../../docs/team-management.md");

fn gatehouse() -> Command {
    let mut command = Command::new(env!("CARGO_BIN_EXE_gatehouse"));
    for var in [
        "DATABASE_URL",
        "GATEHOUSE_HOST",
        "GATEHOUSE_PORT",
        "GATEHOUSE_MASTER_KEY",
        "GATEHOUSE_CONFIG",
        "GATEHOUSE_DATA_DIR",
        "REDIS_URL",
        "GATEHOUSE_REDIS_PREFIX",
    ] {
        command.env_remove(var);
    }
    command
}

#[path = "common/database.rs"]
mod database;
use database::{redis_prefix, redis_url, TestDatabase};

/// A server's files and database, which outlive the process.
struct Files {
    dir: TempDir,
    database: Arc<TestDatabase>,
}

impl From<TempDir> for Files {
    fn from(dir: TempDir) -> Self {
        Self {
            dir,
            database: Arc::new(TestDatabase::create_blocking()),
        }
    }
}

/// A running `gatehouse` process and everything it has printed.
struct Server {
    child: Child,
    base: String,
    output: Arc<Mutex<String>>,
    files: Option<Files>,
}

impl Server {
    fn start(master_key: Option<&str>) -> Self {
        let dir = tempfile::tempdir().expect("temp dir");
        Self::start_in(dir, master_key)
    }

    fn start_in(files: impl Into<Files>, master_key: Option<&str>) -> Self {
        Self::start_with(files, master_key, &[])
    }

    fn start_with(files: impl Into<Files>, master_key: Option<&str>, env: &[(&str, &str)]) -> Self {
        let files: Files = files.into();
        let dir = &files.dir;
        let mut command = gatehouse();
        command.envs(env.iter().copied());
        if let Some(url) = &files.database.url {
            command.env("DATABASE_URL", url);
        }
        command
            .env("GATEHOUSE_PORT", "0")
            .env("GATEHOUSE_DATA_DIR", dir.path().join("data"))
            .env("LEPTOS_SITE_ROOT", dir.path().join("site"))
            .env("RUST_LOG", "debug")
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        if let Some(key) = master_key {
            command.env("GATEHOUSE_MASTER_KEY", key);
        }
        let mut child = command.spawn().expect("gatehouse starts");
        let output = Arc::new(Mutex::new(String::new()));
        let (address_tx, address_rx) = mpsc::channel();
        let stdout = child.stdout.take().expect("stdout");
        let stderr = child.stderr.take().expect("stderr");
        collect(stdout, output.clone(), Some(address_tx));
        collect(stderr, output.clone(), None);
        let base = address_rx
            .recv_timeout(Duration::from_secs(60))
            .unwrap_or_else(|_| {
                panic!(
                    "no listening line; output:\n{}",
                    output.lock().expect("lock")
                )
            });
        Self {
            child,
            base,
            output,
            files: Some(files),
        }
    }

    fn output(&self) -> String {
        self.output.lock().expect("lock").clone()
    }

    /// Sends SIGTERM and waits for a clean exit.
    fn terminate(mut self) -> String {
        let status = Command::new("kill")
            .args(["-TERM", &self.child.id().to_string()])
            .status()
            .expect("kill runs");
        assert!(status.success());
        let exit = self.child.wait().expect("exit");
        assert!(exit.success(), "gatehouse exited with {exit} after SIGTERM");
        self.output()
    }

    /// The example's text with the spec's address and admin key pointed at this server.
    fn point(&self, example: &str) -> String {
        example
            .replace("http://localhost:4000", &self.base)
            .replace("sk-admin-xxx", ADMIN_KEY)
    }

    fn curl(&self, example: &str) -> Value {
        let output = run(Command::new("bash").arg("-c").arg(self.point(example)));
        serde_json::from_slice(&output.stdout).expect("curl printed JSON")
    }

    fn python(&self, example: &str) -> String {
        let python = std::env::var("GATEHOUSE_TEST_PYTHON").unwrap_or_else(|_| "python3".into());
        let output = run(Command::new(python).arg("-c").arg(self.point(example)));
        String::from_utf8(output.stdout).expect("utf-8")
    }

    fn post(&self, path: &str, body: Value) -> Value {
        let output = run(Command::new("curl").args([
            "-sS",
            "-H",
            &format!("Authorization: Bearer {ADMIN_KEY}"),
            "-d",
            &body.to_string(),
            &format!("{}{path}", self.base),
        ]));
        serde_json::from_slice(&output.stdout).expect("JSON")
    }

    /// A team with the given fields and one key in it; returns the key.
    fn team_key(&self, team: Value) -> String {
        let team_id = team["team_id"].clone();
        assert_eq!(self.post("/team/new", team)["team_id"], team_id);
        let key = self.post("/key/generate", json!({"team_id": team_id}));
        key["key"].as_str().expect("key").to_string()
    }

    fn get(&self, path: &str) -> Value {
        let output = run(Command::new("curl").args([
            "-sS",
            "-H",
            &format!("Authorization: Bearer {ADMIN_KEY}"),
            &format!("{}{path}", self.base),
        ]));
        serde_json::from_slice(&output.stdout).expect("JSON")
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn collect(
    stream: impl Read + Send + 'static,
    output: Arc<Mutex<String>>,
    address: Option<mpsc::Sender<String>>,
) {
    thread::spawn(move || {
        for line in BufReader::new(stream).lines().map_while(Result::ok) {
            if let (Some(tx), Some(rest)) = (&address, line.split("listening on ").nth(1)) {
                let _ = tx.send(rest.trim().to_string());
            }
            let mut all = output.lock().expect("lock");
            all.push_str(&line);
            all.push('\n');
        }
    });
}

fn run(command: &mut Command) -> Output {
    let output = command.output().expect("command runs");
    assert!(
        output.status.success(),
        "{command:?} failed: {}\n{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    output
}

/// An example from `tests/spec/`, checked to stand verbatim in the spec.
fn example(name: &str) -> String {
    let path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/spec")
        .join(name);
    let text = std::fs::read_to_string(&path).expect("example file");
    assert!(
        SPEC.contains(text.trim_end()),
        "{name} is not verbatim from the spec"
    );
    text
}

#[test]
fn the_spec_curl_examples_work() {
    let server = Server::start(Some(ADMIN_KEY));
    let team = server.curl(&example("curl_team_new.sh"));
    assert_eq!(team["team_id"], "engineering-team");
    assert_eq!(team["spend"], json!(0.0));
    assert_eq!(team["metadata"]["cost_center"], "CC-123");

    let list = server.curl(&example("curl_team_list.sh"));
    assert_eq!(list["teams"][0]["team_alias"], "Engineering Team");
    let info = server.curl(&example("curl_team_info.sh"));
    assert_eq!(info["max_budget"], json!(1000.0));
    assert_eq!(info["members"], json!([]));

    let updated = server.curl(&example("curl_team_update.sh"));
    assert_eq!(updated["max_budget"], json!(2000.0));
    assert_eq!(
        updated["models"],
        json!(["gpt-4", "gpt-3.5-turbo", "claude-2"])
    );
    assert_eq!(
        updated["tpm_limit"],
        json!(1000000),
        "fields not sent are kept"
    );

    let key = server.curl(&example("curl_key_generate.sh"));
    assert!(key["key"].as_str().is_some_and(|k| k.starts_with("sk-")));
    assert_eq!(key["models"], json!(["gpt-4"]));
    assert!(key["expires"].is_string());
    let info = server.get("/team/info?team_id=engineering-team");
    assert_eq!(info["members"].as_array().map(Vec::len), Some(1));

    assert_eq!(
        server.curl(&example("curl_team_block.sh"))["blocked"],
        json!(true)
    );
    assert_eq!(
        server.curl(&example("curl_team_unblock.sh"))["blocked"],
        json!(false)
    );

    let deleted = server.curl(&example("curl_team_delete.sh"));
    assert_eq!(deleted["deleted_teams"], json!(["engineering-team"]));
    assert_eq!(server.get("/team/list")["teams"], json!([]));
    let token = key["token"].as_str().expect("token");
    assert_eq!(
        server.get(&format!("/key/info?key={token}"))["error"]["code"],
        "404"
    );
}

#[test]
fn the_spec_python_examples_run_unmodified() {
    let server = Server::start(Some(ADMIN_KEY));
    assert_eq!(
        server.python(&example("create_team.py")),
        "Created team: engineering-team\n"
    );
    assert_eq!(
        server.python(&example("list_teams.py")),
        "Team: Engineering Team\n  Spend: $0.00 / $1000.00\n  Models: gpt-4, gpt-3.5-turbo\n"
    );
    assert_eq!(
        server.python(&example("team_info.py")),
        "Team: Engineering Team\nBudget: $0.00 / $1000.00\nMembers: 0\n"
    );

    server.python(&example("update_team.py"));
    let team = server.get("/team/info?team_id=engineering-team");
    assert_eq!(team["max_budget"], json!(2000.0));
    assert_eq!(team["tpm_limit"], json!(2000000));
    assert_eq!(team["rpm_limit"], json!(10000));

    // "Add Member to Team", then "List Team Members".
    let key = server.curl(&example("curl_key_generate.sh"));
    let members = server.python(&example("list_members.py"));
    let masked = team_member_key(&server);
    assert_eq!(members, format!("Member: None, Key: {masked}\n"));
    assert!(!members.contains(key["key"].as_str().expect("key")));

    server.python(&example("delete_team.py"));
    assert_eq!(server.get("/team/list")["teams"], json!([]));

    assert_eq!(
        server.python(&example("complete_example.py")),
        "Created team: data-science-team\n\
         Created key for user 1\nCreated key for user 2\nCreated key for user 3\n\
         \nTeam Info:\n  Name: Data Science Team\n  Budget: $0.00 / $500.00\n  Members: 3\n\
         \nUpdated team budget to $1000\n\
         \nTotal teams: 1\n  - Data Science Team: $0.00 / $1000.00\n"
    );

    // The last example continues the page's session, where `requests` is already imported.
    server.python(&format!(
        "import requests\n{}",
        example("team_with_limits.py")
    ));
    let startup = server.get("/team/info?team_id=startup-team");
    assert_eq!(startup["max_budget"], json!(50.0));
    assert_eq!(startup["tpm_limit"], json!(100000));
    assert_eq!(startup["rpm_limit"], json!(1000));
    assert_eq!(startup["budget_duration"], "30d");
}

fn team_member_key(server: &Server) -> String {
    let info = server.get("/team/info?team_id=engineering-team");
    info["members"][0]["key"]
        .as_str()
        .expect("masked key")
        .to_string()
}

#[test]
fn keys_and_hashes_never_reach_the_log() {
    let server = Server::start(Some(ADMIN_KEY));
    server.curl(&example("curl_team_new.sh"));
    let generated = server.curl(&example("curl_key_generate.sh"));
    let key = generated["key"].as_str().expect("key").to_string();
    let hash = server::service::secrets::sha256_hex(&key);
    // The key in a query string, as a bearer token on an admin route, and a wrong one.
    server.get(&format!("/key/info?key={key}"));
    let bogus = "sk-bogus_ThisIsNotARealKeyButLooksLikeOne1234";
    for token in [key.as_str(), bogus] {
        run(Command::new("curl").args([
            "-sS",
            "-H",
            &format!("Authorization: Bearer {token}"),
            &format!("{}/team/list", server.base),
        ]));
    }
    let log = server.terminate();
    assert!(log.contains("/key/info"), "requests are logged:\n{log}");
    for secret in [ADMIN_KEY, key.as_str(), hash.as_str(), bogus] {
        assert!(!log.contains(secret), "log contains a secret:\n{log}");
    }
}

#[test]
fn first_start_generates_and_stores_an_admin_key_printed_once() {
    let dir = tempfile::tempdir().expect("dir");
    let data = dir.path().join("data");
    let first = Server::start_in(dir, None);
    let output = first.output();
    let key_file = data.join("master_key");
    let key = std::fs::read_to_string(&key_file)
        .expect("key stored")
        .trim()
        .to_string();
    assert!(key.starts_with("sk-admin-") && key.len() >= 40, "{key}");
    assert!(output.contains(&key), "the new key is printed:\n{output}");
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(&key_file)
            .expect("meta")
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o600);
        let dir_mode = std::fs::metadata(&data).expect("meta").permissions().mode();
        assert_eq!(dir_mode & 0o777, 0o700);
    }
    // It works, and a second start reuses it without printing it.
    let status = run(Command::new("curl").args([
        "-sS",
        "-o",
        "/dev/null",
        "-w",
        "%{http_code}",
        "-H",
        &format!("Authorization: Bearer {key}"),
        &format!("{}/team/list", first.base),
    ]));
    assert_eq!(String::from_utf8_lossy(&status.stdout), "200");
    let dir = first.terminate_keep_dir();
    // The SQLite file, when the database is SQLite.
    let db = Some(data.join("gatehouse.db")).filter(|db| db.exists());
    // Files made readable by others (a copy, an unpacked backup) are tightened, and it says so.
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        for (path, mode) in [(&data, 0o755), (&key_file, 0o644)]
            .into_iter()
            .chain(db.as_ref().map(|db| (db, 0o644)))
        {
            std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode)).expect("chmod");
        }
    }
    let second = Server::start_in(dir, None);
    let output = second.output();
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        assert!(output.contains("Tightened"), "{output}");
        for (path, mode) in [(&data, 0o700), (&key_file, 0o600)]
            .into_iter()
            .chain(db.as_ref().map(|db| (db, 0o600)))
        {
            let now = std::fs::metadata(path).expect("meta").permissions().mode() & 0o777;
            assert_eq!(now, mode, "{}", path.display());
        }
    }
    assert!(
        !output.contains(&key),
        "the key is printed again:\n{output}"
    );
    assert!(
        output.contains("master_key"),
        "says where the key is:\n{output}"
    );
}

impl Server {
    fn terminate_keep_dir(self) -> Files {
        self.signal_keep_dir("-TERM")
    }

    /// Sends `signal`, waits for the process to end, and keeps its files.
    fn signal_keep_dir(mut self, signal: &str) -> Files {
        let _ = Command::new("kill")
            .args([signal, &self.child.id().to_string()])
            .status();
        let _ = self.child.wait();
        self.files.take().expect("files")
    }
}

/// LiteLLM's own Python client (`litellm.proxy.client`, pinned in end2end/requirements.txt)
/// manages keys as a LiteLLM user's script would, and the key it made works through the OpenAI
/// SDK with its alias.
#[test]
fn litellms_python_client_manages_keys() {
    let server = Server::start(Some(ADMIN_KEY));
    assert_eq!(
        server.post(
            "/team/new",
            json!({"team_id": "compat", "models": ["gpt-4o*"]})
        )["team_id"],
        "compat"
    );
    let script = format!(
        r#"
import os
os.environ["LITELLM_LOCAL_MODEL_COST_MAP"] = "True"  # no network at import
from litellm.proxy.client import Client
from openai import OpenAI

client = Client(base_url="{base}", api_key="sk-admin-xxx")
made = client.keys.generate(models=["gpt-4o-mini"], aliases={{"fast": "gpt-4o-mini"}},
                            duration="30d", key_alias="ci", team_id="compat")
print(made["key_alias"], made["aliases"], len(made["token_id"]), made["expires"] is not None)
info = client.keys.info(made["token_id"])
print(info["info"]["key_alias"], info["info"]["models"])
page = client.keys.list(team_id="compat", key_alias="ci", return_full_object=True,
                        include_team_keys=True, page=1, size=10)
print(page["total_count"], page["keys"][0]["key_alias"])
updated = client.keys.update(key=made["token_id"], key_alias="ci-2")
print(updated["key_alias"])
answer = OpenAI(base_url="{base}/v1", api_key=made["key"]).chat.completions.create(
    model="fast", messages=[{{"role": "user", "content": "hi"}}], max_tokens=5)
print(answer.model)
deleted = client.keys.delete(key_aliases=["ci-2"])
print(deleted["deleted_keys"] == [info["key"]])
print(client.keys.list(team_id="compat")["total_count"])
print(type(client.teams.list()).__name__)
"#,
        base = server.base
    );
    assert_eq!(
        server.python(&script),
        "ci {'fast': 'gpt-4o-mini'} 64 True\nci ['gpt-4o-mini']\n1 ci\nci-2\ngpt-4o-mini\n\
         True\n0\ndict\n"
    );
}

/// Users through LiteLLM's client, and team members and organizations (which it has no call
/// for) with raw HTTP in LiteLLM's shapes and methods, as its users' scripts send them.
#[test]
fn litellms_python_client_manages_users_members_and_organizations() {
    let server = Server::start(Some(ADMIN_KEY));
    server.post("/team/new", json!({"team_id": "compat"}));
    let script = format!(
        r#"
import os
os.environ["LITELLM_LOCAL_MODEL_COST_MAP"] = "True"  # no network at import
import requests
from litellm.proxy.client.users import UsersManagementClient

base = "{base}"
users = UsersManagementClient(base_url=base, api_key="sk-admin-xxx")
made = users.create_user({{"user_id": "ada", "user_email": "ada@example.com",
                                  "teams": ["compat"], "max_budget": 5}})
print(made["user_id"], made["key"].startswith("sk-"), made["teams"])
user = users.get_user("ada")
print(user["user_info"]["max_budget"], len(user["keys"]))
print([u["user_id"] for u in users.list_users()])

admin = {{"Authorization": "Bearer sk-admin-xxx"}}
def post(path, body):
    reply = requests.post(base + path, headers=admin, json=body)
    reply.raise_for_status()
    return reply.json()
added = post("/team/member_add", {{"team_id": "compat", "max_budget_in_team": 1.5,
    "member": [{{"role": "admin", "user_id": "bob"}}, {{"role": "user", "user_email": "cy@example.com"}}]}})
print(sorted((m["user_id"] or "", m["role"]) for m in added["members_with_roles"] if m["user_id"] in ("ada", "bob")))
print([m["max_budget_in_team"] for m in added["updated_team_memberships"]])
changed = post("/team/member_update", {{"team_id": "compat", "user_email": "cy@example.com",
    "role": "admin", "max_budget_in_team": 2}})
print(changed["role"], changed["max_budget_in_team"])
info = requests.get(base + "/team/info", headers=admin, params={{"team_id": "compat"}}).json()
print(len(info["team_info"]["members_with_roles"]), sum(m["key"] is None for m in info["members"]))
gone = post("/team/member_delete", {{"team_id": "compat", "user_id": "ada"}})
print(len(gone["deleted_keys"]), "ada" in [m["user_id"] for m in gone["members_with_roles"]])
print(users.delete_user(["ada"]))

org = post("/organization/new", {{"organization_alias": "Acme", "max_budget": 10, "models": ["gpt-4o*"]}})
post("/team/update", {{"team_id": "compat", "organization_id": org["organization_id"]}})
oid = org["organization_id"]
info = requests.get(base + "/organization/info", headers=admin, params={{"organization_id": oid}}).json()
print([t["team_id"] for t in info["teams"]], info["litellm_budget_table"]["max_budget"])
patched = requests.patch(base + "/organization/update", headers=admin,
                         json={{"organization_id": oid, "max_budget": 20}}).json()
added = post("/organization/member_add", {{"organization_id": oid,
    "member": {{"role": "org_admin", "user_id": "bob"}}}})
print(patched["max_budget"], added["updated_organization_memberships"][0]["user_role"])
print(len(requests.get(base + "/organization/list", headers=admin).json()))
gone = requests.delete(base + "/organization/delete", headers=admin, json={{"organization_ids": [oid]}})
print(gone.status_code, requests.get(base + "/team/info", headers=admin, params={{"team_id": "compat"}}).status_code)
"#,
        base = server.base
    );
    assert_eq!(
        server.python(&script),
        "ada True ['compat']\n5.0 1\n['ada']\n[('ada', 'user'), ('bob', 'admin')]\n\
         [1.5, 1.5]\nadmin 2.0\n3 2\n1 False\n1\n['compat'] 10.0\n20.0 org_admin\n1\n200 404\n"
    );
}

#[test]
fn the_openai_sdk_calls_the_proxy() {
    let server = Server::start(Some(ADMIN_KEY));
    let key = server
        .team_key(json!({"team_id": "sdk", "models": ["gpt-4o-mini", "text-embedding-3-small"]}));
    let script = format!(
        r#"
import openai
from openai import OpenAI

client = OpenAI(base_url="{base}/v1", api_key="{key}")
messages = [{{"role": "user", "content": "Say hello to the team"}}]
answer = client.chat.completions.create(model="gpt-4o-mini", messages=messages, max_tokens=5)
print(answer.choices[0].message.content)
print(answer.usage.prompt_tokens, answer.usage.completion_tokens)
text = ""
for chunk in client.chat.completions.create(model="gpt-4o-mini", messages=messages, stream=True):
    if chunk.choices and chunk.choices[0].delta.content:
        text += chunk.choices[0].delta.content
print(text)
print(len(client.embeddings.create(model="text-embedding-3-small", input=["a", "b"]).data))
print([m.id for m in client.models.list()])
try:
    client.chat.completions.create(model="gpt-4", messages=messages)
except openai.AuthenticationError as err:
    print("refused", err.status_code, err.body["type"])
"#,
        base = server.base
    );
    assert_eq!(
        server.python(&script),
        "This is a mock reply\n8 5\nThis is a mock reply from Gatehouse.\n2\n\
         ['gpt-4o-mini', 'text-embedding-3-small']\nrefused 401 team_model_access_denied\n"
    );
    let spend = server.get("/team/info?team_id=sdk")["spend"]
        .as_f64()
        .expect("spend");
    assert!(spend > 0.0);
}

#[test]
fn sigterm_writes_every_answered_request() {
    let server = Server::start(Some(ADMIN_KEY));
    let key = server.team_key(json!({"team_id": "drain"}));
    let body =
        json!({"model": "gpt-4o-mini", "messages": [{"role": "user", "content": "hello there"}]});
    for _ in 0..25 {
        let output = run(Command::new("curl").args([
            "-sS",
            "-o",
            "/dev/null",
            "-w",
            "%{http_code}",
            "-H",
            &format!("Authorization: Bearer {key}"),
            "-d",
            &body.to_string(),
            &format!("{}/v1/chat/completions", server.base),
        ]));
        assert_eq!(String::from_utf8_lossy(&output.stdout), "200");
    }
    let dir = server.terminate_keep_dir();
    let server = Server::start_in(dir, Some(ADMIN_KEY));
    assert_eq!(
        server.get("/spend/logs?team_id=drain")["total_count"],
        json!(25)
    );
    let spend = server.get("/team/info?team_id=drain")["spend"]
        .as_f64()
        .expect("spend");
    assert!((spend - 25.0 * LOAD_REQUEST_COST).abs() < 1e-9, "{spend}");
}

/// gpt-4o-mini from the built-in table: 5 prompt tokens ("hello there" + 3) and 7 completion
/// tokens at $0.15 and $0.60 per million.
const LOAD_REQUEST_COST: f64 = 0.000_004_95;

/// Four clients send requests for 1.5 s; answers the `id` of each answered request and when it
/// arrived.
fn load(server: &Server, key: &str) -> Vec<(String, std::time::Instant)> {
    let url = format!("{}/v1/chat/completions", server.base);
    let runtime = tokio::runtime::Runtime::new().expect("runtime");
    runtime.block_on(async {
        let client = reqwest::Client::new();
        let until = std::time::Instant::now() + Duration::from_millis(1500);
        let workers = (0..4).map(|_| {
            let (client, url, key) = (client.clone(), url.clone(), key.to_string());
            tokio::spawn(async move {
                let mut acks = Vec::new();
                while std::time::Instant::now() < until {
                    let response = client
                        .post(&url)
                        .bearer_auth(&key)
                        .json(&json!({"model": "gpt-4o-mini", "messages": [{"role": "user", "content": "hello there"}]}))
                        .send()
                        .await
                        .expect("sent");
                    assert_eq!(response.status(), 200);
                    let answer: Value = response.json().await.expect("body");
                    let id = answer["id"].as_str().expect("id").to_string();
                    acks.push((id, std::time::Instant::now()));
                }
                acks
            })
        });
        let mut all = Vec::new();
        for worker in workers.collect::<Vec<_>>() {
            all.extend(worker.await.expect("worker"));
        }
        all
    })
}

/// Every request id in a team's spend log.
fn logged_ids(server: &Server, team_id: &str) -> std::collections::HashSet<String> {
    let mut ids = std::collections::HashSet::new();
    for page in 1.. {
        let logs = server.get(&format!(
            "/spend/logs?team_id={team_id}&size=100&page={page}"
        ));
        let rows = logs["logs"].as_array().expect("logs");
        ids.extend(
            rows.iter()
                .filter_map(|r| r["request_id"].as_str().map(String::from)),
        );
        if page >= logs["total_pages"].as_u64().expect("pages") {
            break;
        }
    }
    ids
}

#[test]
fn kill_9_loses_at_most_the_last_second_of_spend() {
    let server = Server::start(Some(ADMIN_KEY));
    let key = server.team_key(json!({"team_id": "load"}));
    let acked = load(&server, &key);
    let killed_at = std::time::Instant::now();
    let dir = server.signal_keep_dir("-KILL");
    let safe = acked
        .iter()
        .filter(|(_, t)| killed_at.duration_since(*t) > Duration::from_secs(1))
        .count();
    assert!(safe > 10, "too little load to judge: {safe} requests");

    let server = Server::start_in(dir, Some(ADMIN_KEY));
    let logged = server.get("/spend/logs?team_id=load")["total_count"]
        .as_u64()
        .expect("count") as usize;
    let spend = server.get("/team/info?team_id=load")["spend"]
        .as_f64()
        .expect("spend");
    assert!(
        logged >= safe && logged <= acked.len(),
        "{logged} logged of {} answered, {safe} over a second before the kill",
        acked.len()
    );
    // The team's spend covers every request answered over a second before the kill, and no
    // more than were answered.
    let (low, high) = (
        safe as f64 * LOAD_REQUEST_COST,
        acked.len() as f64 * LOAD_REQUEST_COST,
    );
    assert!(
        spend >= low - 1e-9 && spend <= high + 1e-9,
        "spend {spend} not in [{low}, {high}]"
    );
}

#[test]
fn strict_durability_loses_nothing_answered_on_kill_9() {
    let dir = tempfile::tempdir().expect("dir");
    let server = Server::start_with(
        dir,
        Some(ADMIN_KEY),
        &[("GATEHOUSE_SPEND_DURABILITY", "strict")],
    );
    let key = server.team_key(json!({"team_id": "strict"}));
    let acked = load(&server, &key);
    let dir = server.signal_keep_dir("-KILL");
    assert!(
        acked.len() > 100,
        "too little load to judge: {}",
        acked.len()
    );

    let server = Server::start_in(dir, Some(ADMIN_KEY));
    let logged = logged_ids(&server, "strict");
    let missing: Vec<_> = acked
        .iter()
        .filter(|(id, _)| !logged.contains(id))
        .collect();
    assert!(
        missing.is_empty(),
        "{} of {} answered requests missing from the spend log",
        missing.len(),
        acked.len()
    );
    let spend = server.get("/team/info?team_id=strict")["spend"]
        .as_f64()
        .expect("spend");
    assert!(
        spend >= acked.len() as f64 * LOAD_REQUEST_COST - 1e-9,
        "spend {spend} for {} answered",
        acked.len()
    );
}

/// An upstream that never answers: its requests stay in flight, reservations held.
fn spawn_silent_upstream() -> String {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let addr = listener.local_addr().expect("addr");
    thread::spawn(move || {
        let mut held = Vec::new();
        for stream in listener.incoming().map_while(Result::ok) {
            held.push(stream);
        }
    });
    format!("http://{addr}/v1")
}

/// One instance's request, from a blocking caller.
fn chat(base: &str, key: &str, body: &Value) -> (u16, Value) {
    let output = Command::new("curl")
        .args(["-sS", "-m", "5", "-w", "\n%{http_code}", "-H"])
        .arg(format!("Authorization: Bearer {key}"))
        .args(["-H", "Content-Type: application/json", "-d"])
        .arg(body.to_string())
        .arg(format!("{base}/v1/chat/completions"))
        .output()
        .expect("curl runs");
    let text = String::from_utf8_lossy(&output.stdout).to_string();
    let (body, status) = text.rsplit_once('\n').unwrap_or(("", "0"));
    (
        status.trim().parse().unwrap_or(0),
        serde_json::from_str(body).unwrap_or(Value::Null),
    )
}

#[test]
fn a_fleet_survives_kill_9_of_an_instance_and_gets_its_reservations_back() {
    let runtime = tokio::runtime::Runtime::new().expect("runtime");
    let Some(redis) = runtime.block_on(redis_url()) else {
        return;
    };
    let Some(database) = runtime.block_on(TestDatabase::create_postgres()) else {
        return;
    };
    let database = Arc::new(database);
    let prefix = redis_prefix();
    let silent = spawn_silent_upstream();
    let config_dir = tempfile::tempdir().expect("dir");
    let config = config_dir.path().join("gatehouse.yaml");
    let priced = "input_cost_per_token: 0.000001\n    output_cost_per_token: 0.000002\n    max_output_tokens: 1000000";
    std::fs::write(
        &config,
        format!(
            "model_list:\n\
             - model_name: silent\n  litellm_params:\n    model: openai/silent\n    api_base: {silent}\n    timeout: 300\n  model_info:\n    {priced}\n\
             - model_name: gpt-4o-mini\n  litellm_params:\n    model: mock/gpt-4o-mini\n  model_info:\n    {priced}\n"
        ),
    )
    .expect("config");
    let config = config.to_str().expect("utf-8").to_string();
    let env = [
        ("REDIS_URL", redis.as_str()),
        ("GATEHOUSE_REDIS_PREFIX", prefix.as_str()),
        ("GATEHOUSE_CONFIG", config.as_str()),
    ];
    let start = || {
        let files = Files {
            dir: tempfile::tempdir().expect("dir"),
            database: database.clone(),
        };
        Server::start_with(files, Some(ADMIN_KEY), &env)
    };
    let survivors = [start(), start()];
    let doomed = start();

    // A team whose budget one big request fills: $0.60 reserved of $1.
    let held = doomed.team_key(json!({"team_id": "held", "max_budget": 1.0}));
    let big = |model: &str| json!({"model": model, "messages": [{"role": "user", "content": "hi"}], "max_tokens": 300_000});
    let in_flight = {
        let (base, key, body) = (doomed.base.clone(), held.clone(), big("silent"));
        thread::spawn(move || chat(&base, &key, &body))
    };
    // Once the doomed instance holds it (Redis shows the reservation), a second big request is
    // refused by every instance.
    let reserved = || -> i64 {
        runtime.block_on(async {
            let client = redis::Client::open(redis.as_str()).expect("url");
            let mut con = client
                .get_multiplexed_async_connection()
                .await
                .expect("redis");
            redis::cmd("HGET")
                .arg(format!("{prefix}:team:held"))
                .arg("reserved")
                .query_async::<Option<i64>>(&mut con)
                .await
                .expect("HGET")
                .unwrap_or(0)
        })
    };
    let started = std::time::Instant::now();
    while reserved() == 0 {
        assert!(started.elapsed() < Duration::from_secs(10), "never held");
        thread::sleep(Duration::from_millis(10));
    }
    let (status, body) = chat(&survivors[0].base, &held, &big("gpt-4o-mini"));
    assert_eq!(status, 400, "{body}");
    assert_eq!(body["error"]["type"], "budget_exceeded", "{body}");
    assert_eq!(chat(&survivors[1].base, &held, &big("gpt-4o-mini")).0, 400);

    // Load on the survivors, through the kill.
    let load = survivors[0].team_key(json!({"team_id": "load"}));
    let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let workers: Vec<_> = survivors
        .iter()
        .map(|server| {
            let (base, key, stop) = (server.base.clone(), load.clone(), stop.clone());
            thread::spawn(move || {
                let mut acked = Vec::new();
                while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                    let body = json!({"model": "gpt-4o-mini", "messages": [{"role": "user", "content": "hello"}]});
                    let (status, answer) = chat(&base, &key, &body);
                    assert_eq!(status, 200, "a survivor refused: {answer}");
                    acked.push(answer["id"].as_str().expect("id").to_string());
                }
                acked
            })
        })
        .collect();
    thread::sleep(Duration::from_millis(300));
    let killed = std::time::Instant::now();
    drop(doomed.signal_keep_dir("-KILL"));
    let _ = in_flight.join();

    // The dead instance's lease expires (30 s after its last renewal, swept every 5 s): then
    // the big request fits again, on any survivor.
    loop {
        if chat(&survivors[1].base, &held, &big("gpt-4o-mini")).0 == 200 {
            break;
        }
        assert!(
            killed.elapsed() < Duration::from_secs(45),
            "the dead instance's reservation was never released"
        );
        thread::sleep(Duration::from_millis(250));
    }
    assert_eq!(reserved(), 0, "a reservation is still held");
    eprintln!(
        "the killed instance's reservation came back {:.1} s after the kill",
        killed.elapsed().as_secs_f64()
    );
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    let acked: Vec<String> = workers
        .into_iter()
        .flat_map(|w| w.join().expect("worker"))
        .collect();
    assert!(acked.len() > 50, "too little load: {}", acked.len());

    // Nothing the survivors answered is lost.
    let started = std::time::Instant::now();
    loop {
        let logged = logged_ids(&survivors[0], "load");
        let missing = acked.iter().filter(|id| !logged.contains(*id)).count();
        if missing == 0 {
            break;
        }
        assert!(
            started.elapsed() < Duration::from_secs(5),
            "{missing} of {} answered requests missing from the spend log",
            acked.len()
        );
        thread::sleep(Duration::from_millis(100));
    }
}

#[test]
fn invalid_configuration_is_refused_with_a_message() {
    let dir = tempfile::tempdir().expect("dir");
    let cases: &[(&str, &str, &str)] = &[
        ("GATEHOUSE_PORT", "not-a-port", "invalid value"),
        ("GATEHOUSE_PORT", "70000", "invalid value"),
        ("GATEHOUSE_HOST", "localhost:99", "invalid value"),
        ("GATEHOUSE_MASTER_KEY", "short", "admin key must be"),
        ("DATABASE_URL", "mysql://db/x", "unsupported database URL"),
        (
            "GATEHOUSE_CONFIG",
            "/nonexistent/gatehouse.yaml",
            "GATEHOUSE_CONFIG",
        ),
        ("GATEHOUSE_SESSION_TTL", "forever", "--session-ttl"),
        ("GATEHOUSE_HEADER_TIMEOUT", "0s", "--header-timeout"),
        ("GATEHOUSE_MAX_CONNECTIONS", "0", "--max-connections"),
        (
            "GATEHOUSE_PUBLIC_URL",
            "ftp://gate.example.com",
            "--public-url",
        ),
        (
            "GATEHOUSE_PUBLIC_URL",
            "https://gate.example.com/console",
            "--public-url",
        ),
        (
            "GATEHOUSE_TRUSTED_PROXIES",
            "10.0.0.0/99",
            "--trusted-proxies",
        ),
        (
            "GATEHOUSE_SPEND_DURABILITY",
            "sometimes",
            "--spend-durability",
        ),
        ("REDIS_URL", "http://127.0.0.1:6379", "--redis-url"),
        // Redis unreachable at start: no start, a message, never the password.
        (
            "REDIS_URL",
            "redis://:hunter2-password@127.0.0.1:1",
            "Redis cannot be used",
        ),
        ("GATEHOUSE_REDIS_PREFIX", "two words", "--redis-prefix"),
    ];
    for (var, value, expected) in cases {
        let output = gatehouse()
            .env("GATEHOUSE_PORT", "0")
            .env("GATEHOUSE_DATA_DIR", dir.path().join("data"))
            .env("GATEHOUSE_MASTER_KEY", ADMIN_KEY)
            .env(var, value)
            .output()
            .expect("runs");
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert!(!output.status.success(), "{var}={value} was accepted");
        assert!(stderr.contains(expected), "{var}={value}: {stderr}");
        assert!(
            !stderr.contains(ADMIN_KEY),
            "{var}={value} printed the admin key"
        );
        assert!(
            !stderr.contains("hunter2"),
            "{var}={value} printed a password"
        );
    }
}

#[test]
fn help_documents_every_setting() {
    let output = gatehouse()
        .env("GATEHOUSE_MASTER_KEY", ADMIN_KEY)
        .arg("--help")
        .output()
        .expect("runs");
    let help = String::from_utf8_lossy(&output.stdout);
    for var in [
        "GATEHOUSE_PORT",
        "GATEHOUSE_HOST",
        "DATABASE_URL",
        "GATEHOUSE_MASTER_KEY",
        "GATEHOUSE_CONFIG",
        "GATEHOUSE_DATA_DIR",
        "REDIS_URL",
        "GATEHOUSE_REDIS_PREFIX",
    ] {
        assert!(help.contains(var), "--help lacks {var}:\n{help}");
    }
    assert!(!help.contains(ADMIN_KEY), "--help shows the admin key");
}

/// Runs one SQL statement on a stopped server's database (SQLite file or PostgreSQL), as an
/// operator's own tool would: nothing of Gatehouse's.
fn run_sql(files: &Files, statement: &str) {
    let output = match &files.database.url {
        Some(url) => {
            run(Command::new("psql").args([url.as_str(), "-v", "ON_ERROR_STOP=1", "-c", statement]))
        }
        None => {
            let db = files.dir.path().join("data").join("gatehouse.db");
            run(Command::new("python3").args([
                "-c",
                "import sqlite3, sys; c = sqlite3.connect(sys.argv[1]); c.execute(sys.argv[2]); c.commit()",
                &db.to_string_lossy(),
                statement,
            ]))
        }
    };
    assert!(output.status.success());
}

/// Addresses two users shared before an address had to be one person's are reported at start,
/// and both users keep working.
#[test]
fn addresses_shared_from_before_are_reported_at_start() {
    let server = Server::start(Some(ADMIN_KEY));
    for (user, email) in [
        ("ann", "ann@example.com"),
        ("imposter", "other@example.com"),
    ] {
        server.post(
            "/user/new",
            json!({"user_id": user, "user_email": email, "auto_create_key": false}),
        );
    }
    assert!(!server.output().contains("held by more than one user"));
    let files = server.terminate_keep_dir();
    run_sql(
        &files,
        "UPDATE users SET user_email = 'Ann@Example.com' WHERE user_id = 'imposter'",
    );
    let server = Server::start_in(files, Some(ADMIN_KEY));
    let output = server.output();
    assert!(
        output.contains("held by more than one user") && output.contains("ann@example.com"),
        "{output}"
    );
    for user in ["ann", "imposter"] {
        let info = server.get(&format!("/user/info?user_id={user}"));
        assert_eq!(info["user_info"]["user_id"], user, "{info}");
    }
}
