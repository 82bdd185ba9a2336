//! The HTTP edge against hostile clients and browsers: slow and idle connections are closed,
//! failed authentication is throttled, signed-in browsers act only from Gatehouse's origin,
//! pages carry a strict CSP, errors never repeat a secret, files are owner-only.

use crate::helpers::{read, TestApp, ADMIN_KEY};
use reqwest::{header, Method, StatusCode};
use serde_json::{json, Value};
use std::time::{Duration, Instant};
use tokio::{
    io::{AsyncReadExt, AsyncWriteExt},
    net::TcpStream,
};

fn addr(app: &TestApp) -> String {
    app.base.trim_start_matches("http://").to_string()
}

/// Reads until the server closes the connection; answers what it sent.
async fn until_closed(stream: &mut TcpStream) -> Vec<u8> {
    let mut all = Vec::new();
    let mut buf = [0u8; 4096];
    loop {
        match stream.read(&mut buf).await {
            Ok(0) | Err(_) => return all,
            Ok(n) => all.extend_from_slice(&buf[..n]),
        }
    }
}

#[tokio::test]
async fn slow_and_idle_connections_are_closed_while_normal_requests_go_on() {
    let app = TestApp::spawn_with(&["--header-timeout", "1s", "--body-timeout", "1s"]).await;
    let key = app.team_with_key("t").await;
    let mut held = Vec::new();
    // Partial headers.
    for _ in 0..100 {
        let mut stream = TcpStream::connect(addr(&app)).await.expect("connect");
        stream
            .write_all(b"POST /v1/chat/completions HTTP/1.1\r\nHost: x\r\n")
            .await
            .expect("write");
        held.push(stream);
    }
    // A body that trickles in.
    for _ in 0..50 {
        let mut stream = TcpStream::connect(addr(&app)).await.expect("connect");
        stream
            .write_all(
                format!(
                    "POST /team/new HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {ADMIN_KEY}\r\n\
                     Content-Type: application/json\r\nContent-Length: 1000\r\n\r\n{{"
                )
                .as_bytes(),
            )
            .await
            .expect("write");
        held.push(stream);
    }
    // Idle kept-alive connections, after one request each.
    for _ in 0..50 {
        let mut stream = TcpStream::connect(addr(&app)).await.expect("connect");
        stream
            .write_all(b"GET /health HTTP/1.1\r\nHost: x\r\n\r\n")
            .await
            .expect("write");
        let mut buf = [0u8; 1024];
        let n = stream.read(&mut buf).await.expect("answer");
        assert!(String::from_utf8_lossy(&buf[..n]).starts_with("HTTP/1.1 200"));
        held.push(stream);
    }
    // Normal requests are answered, and promptly, while those are held.
    let mut latencies = Vec::new();
    for _ in 0..20 {
        let started = Instant::now();
        let reply = app
            .chat(&key, json!({"model": "gpt-4o-mini", "messages": [{"role": "user", "content": "hi"}], "max_tokens": 5}))
            .await;
        latencies.push(started.elapsed());
        assert_eq!(reply.status, StatusCode::OK, "{}", reply.body);
    }
    latencies.sort();
    println!(
        "normal requests during the attack: median {:?}",
        latencies[10]
    );
    assert!(latencies[10] < Duration::from_millis(250), "{latencies:?}");
    // Every held connection is closed by the server within its timeout (plus slack).
    let started = Instant::now();
    let closed = futures_util::future::join_all(held.iter_mut().map(|stream| async {
        tokio::time::timeout(Duration::from_secs(10), until_closed(stream)).await
    }))
    .await;
    assert!(closed.iter().all(Result::is_ok), "a connection stayed open");
    println!("all held connections closed after {:?}", started.elapsed());
    // The slow bodies were told why.
    let slow_body_answers = closed[100..150]
        .iter()
        .filter_map(|r| r.as_ref().ok())
        .filter(|bytes| String::from_utf8_lossy(bytes).starts_with("HTTP/1.1 408"))
        .count();
    assert_eq!(slow_body_answers, 50);
}

#[tokio::test]
async fn requests_that_take_long_are_not_cut_by_the_header_timeout() {
    let (app, faults) = TestApp::spawn_faults_with(&["--header-timeout", "1s"]).await;
    let key = app.team_with_key("t").await;
    // A stream that pauses longer than the header timeout, and a request whose answer takes
    // that long: neither connection is idle.
    let mut body = json!({"model": "stream-held", "stream": true, "messages": [{"role": "user", "content": "hi"}]});
    let mut stream = app
        .client
        .post(format!("{}/v1/chat/completions", app.base))
        .bearer_auth(&key)
        .json(&body)
        .send()
        .await
        .expect("sent");
    let first = stream.chunk().await.expect("read").expect("a chunk");
    assert!(String::from_utf8_lossy(&first).contains("Hello"));
    body["model"] = json!("held");
    body["stream"] = json!(false);
    let slow = {
        let (client, base, key, body) = (
            app.client.clone(),
            app.base.clone(),
            key.clone(),
            body.clone(),
        );
        tokio::spawn(async move {
            client
                .post(format!("{base}/v1/chat/completions"))
                .bearer_auth(key)
                .json(&body)
                .send()
                .await
                .expect("sent")
                .status()
        })
    };
    faults.until_waiting(2).await;
    tokio::time::sleep(Duration::from_millis(1500)).await;
    faults.open();
    let mut rest = Vec::new();
    while let Some(chunk) = stream.chunk().await.expect("the stream goes on") {
        rest.extend_from_slice(&chunk);
    }
    assert!(
        String::from_utf8_lossy(&rest).contains("[DONE]"),
        "{}",
        String::from_utf8_lossy(&rest)
    );
    assert_eq!(slow.await.expect("task"), StatusCode::OK);
}

#[tokio::test]
async fn too_many_connections_wait_for_a_free_slot() {
    let app = TestApp::spawn_with(&["--header-timeout", "1s", "--max-connections", "10"]).await;
    let mut held = Vec::new();
    for _ in 0..10 {
        let mut stream = TcpStream::connect(addr(&app)).await.expect("connect");
        stream.write_all(b"GET /hea").await.expect("write");
        held.push(stream);
    }
    // The eleventh is served once the server has closed a slow one.
    let started = Instant::now();
    let health = app.send(Method::GET, "/health", None, None).await;
    assert_eq!(health.status, StatusCode::OK);
    assert!(
        started.elapsed() >= Duration::from_millis(500),
        "served before a slot was free"
    );
}

/// A server that trusts 127.0.0.1 as its proxy, so tests can speak from many addresses.
async fn behind_proxy() -> TestApp {
    TestApp::spawn_with(&["--trusted-proxies", "127.0.0.1"]).await
}

async fn as_client(
    app: &TestApp,
    from: &str,
    method: Method,
    path: &str,
    auth: Option<&str>,
    body: Option<Value>,
) -> crate::helpers::Reply {
    let mut request = app
        .client
        .request(method, format!("{}{path}", app.base))
        .header("x-forwarded-for", from);
    if let Some(auth) = auth {
        request = request.bearer_auth(auth);
    }
    if let Some(body) = body {
        request = request.json(&body);
    }
    read(request.send().await.expect("sent")).await
}

#[tokio::test]
async fn wrong_admin_keys_are_throttled_per_address_without_slowing_others() {
    let app = behind_proxy().await;
    let attacker = "203.0.113.50";
    for _ in 0..20 {
        let reply = as_client(
            &app,
            attacker,
            Method::GET,
            "/team/list",
            Some("sk-admin-guess-000"),
            None,
        )
        .await;
        assert_eq!(reply.status, StatusCode::UNAUTHORIZED);
    }
    let throttled = as_client(
        &app,
        attacker,
        Method::GET,
        "/team/list",
        Some("sk-admin-guess-001"),
        None,
    )
    .await;
    assert_eq!(
        throttled.status,
        StatusCode::TOO_MANY_REQUESTS,
        "{}",
        throttled.body
    );
    assert_eq!(throttled.body["error"]["type"], "rate_limit_error");
    let retry: u64 = throttled.headers["retry-after"]
        .to_str()
        .expect("ascii")
        .parse()
        .expect("secs");
    assert!((1..=60).contains(&retry));
    // The admin key is chosen by its operator and can be guessed: once throttled, the
    // attacker's next try is refused before it is compared, even when it is right.
    let guessed = as_client(
        &app,
        attacker,
        Method::GET,
        "/team/list",
        Some(ADMIN_KEY),
        None,
    )
    .await;
    assert_eq!(
        guessed.status,
        StatusCode::TOO_MANY_REQUESTS,
        "{}",
        guessed.body
    );
    assert!(
        !guessed.body.to_string().contains("\"teams\""),
        "{}",
        guessed.body
    );
    // The admin elsewhere is not slowed.
    let admin = as_client(
        &app,
        "198.51.100.1",
        Method::GET,
        "/team/list",
        Some(ADMIN_KEY),
        None,
    )
    .await;
    assert_eq!(admin.status, StatusCode::OK);
    // A minute later the attacker may try again.
    app.clock.advance(61_000);
    let again = as_client(
        &app,
        attacker,
        Method::GET,
        "/team/list",
        Some("sk-admin-guess-002"),
        None,
    )
    .await;
    assert_eq!(again.status, StatusCode::UNAUTHORIZED);
}

#[tokio::test]
async fn a_forwarded_address_from_an_untrusted_peer_is_ignored() {
    let app = TestApp::spawn().await;
    for i in 0..20 {
        let from = format!("203.0.113.{i}");
        let reply = as_client(
            &app,
            &from,
            Method::POST,
            "/session/login",
            None,
            Some(json!({"key": "wrong-key-123"})),
        )
        .await;
        assert_eq!(reply.status, StatusCode::UNAUTHORIZED);
    }
    // Changing X-Forwarded-For does not make a new client: the socket's address is throttled.
    let reply = as_client(
        &app,
        "192.0.2.77",
        Method::POST,
        "/session/login",
        None,
        Some(json!({"key": "wrong-key-123"})),
    )
    .await;
    assert_eq!(reply.status, StatusCode::TOO_MANY_REQUESTS);
}

#[tokio::test]
async fn sign_in_guessing_from_many_addresses_locks_out_strangers_not_the_admin() {
    let app = behind_proxy().await;
    let owner = "198.51.100.9";
    let login = |from: String, key: &'static str| {
        let app = &app;
        async move {
            as_client(
                app,
                &from,
                Method::POST,
                "/session/login",
                None,
                Some(json!({"key": key})),
            )
            .await
        }
    };
    assert_eq!(login(owner.into(), ADMIN_KEY).await.status, StatusCode::OK);
    for i in 0..100 {
        let reply = login(format!("203.0.{}.{}", i / 200, i % 200), "wrong-key-xyz").await;
        assert_eq!(reply.status, StatusCode::UNAUTHORIZED);
    }
    assert_eq!(
        login("203.0.113.250".into(), "wrong-key-xyz").await.status,
        StatusCode::TOO_MANY_REQUESTS
    );
    assert_eq!(login(owner.into(), ADMIN_KEY).await.status, StatusCode::OK);
}

#[tokio::test]
async fn guessing_virtual_keys_is_throttled() {
    let app = behind_proxy().await;
    let key = app.team_with_key("t").await;
    let body = json!({"model": "gpt-4o-mini", "messages": [{"role": "user", "content": "hi"}], "max_tokens": 5});
    let holder = "198.51.100.3";
    let used = as_client(
        &app,
        holder,
        Method::POST,
        "/v1/chat/completions",
        Some(&key),
        Some(body.clone()),
    )
    .await;
    assert_eq!(used.status, StatusCode::OK, "{}", used.body);
    // Guesses at one key's secret, from many addresses: that key id is throttled for them.
    let id = key.split('_').next().expect("id").to_string();
    for i in 0..100 {
        let guess = format!("{id}_{}", "x".repeat(40));
        let reply = as_client(
            &app,
            &format!("203.0.113.{}", i % 250),
            Method::POST,
            "/v1/chat/completions",
            Some(&guess),
            Some(body.clone()),
        )
        .await;
        assert_eq!(reply.status, StatusCode::UNAUTHORIZED, "{i}");
    }
    let guess = format!("{id}_{}", "y".repeat(40));
    let reply = as_client(
        &app,
        "192.0.2.200",
        Method::POST,
        "/v1/chat/completions",
        Some(&guess),
        Some(body.clone()),
    )
    .await;
    assert_eq!(reply.status, StatusCode::TOO_MANY_REQUESTS);
    // Its holder, at an address that used it before, goes on.
    let again = as_client(
        &app,
        holder,
        Method::POST,
        "/v1/chat/completions",
        Some(&key),
        Some(body.clone()),
    )
    .await;
    assert_eq!(again.status, StatusCode::OK, "{}", again.body);
}

#[tokio::test]
async fn the_origin_check_is_exact_and_covers_logout() {
    let app = TestApp::spawn().await;
    let port = app.base.rsplit(':').next().expect("port").to_string();
    let login = app
        .send(
            Method::POST,
            "/session/login",
            None,
            Some(json!({"key": ADMIN_KEY})),
        )
        .await;
    let cookie = login.headers[header::SET_COOKIE]
        .to_str()
        .expect("ascii")
        .to_string();
    assert!(!cookie.contains("Secure"), "{cookie}");
    let cookie = cookie.split(';').next().expect("pair").to_string();
    let post = |path: &str, origin: &str, host: Option<&str>| {
        let mut request = app
            .client
            .post(format!("{}{path}", app.base))
            .header(header::COOKIE, cookie.clone())
            .header(header::ORIGIN, origin)
            .json(&json!({"team_id": "x"}));
        if let Some(host) = host {
            request = request.header(header::HOST, host);
        }
        request.send()
    };
    for (origin, host) in [
        (format!("https://127.0.0.1:{port}"), None),
        (
            format!("http://evil.example:{port}"),
            Some(format!("evil.example:{port}")),
        ),
        (format!("http://localhost:{}", 1), None),
    ] {
        let reply = read(
            post("/team/new", &origin, host.as_deref())
                .await
                .expect("sent"),
        )
        .await;
        assert_eq!(reply.status, StatusCode::FORBIDDEN, "{origin}");
    }
    let logout = read(
        post("/session/logout", "https://evil.example", None)
            .await
            .expect("sent"),
    )
    .await;
    assert_eq!(logout.status, StatusCode::FORBIDDEN);
    for origin in [
        format!("http://localhost:{port}"),
        format!("http://127.0.0.1:{port}"),
    ] {
        let reply = read(post("/team/new", &origin, None).await.expect("sent")).await;
        assert!(
            reply.status == StatusCode::OK || reply.status == StatusCode::CONFLICT,
            "{origin}: {}",
            reply.body
        );
    }
    // The session survived the forged logout, and our own page can end it.
    let logout = read(
        post("/session/logout", &format!("http://localhost:{port}"), None)
            .await
            .expect("sent"),
    )
    .await;
    assert_eq!(logout.status, StatusCode::OK);
}

#[tokio::test]
async fn a_public_https_url_makes_the_cookie_secure_and_is_the_only_origin() {
    let app = TestApp::spawn_with(&["--public-url", "https://gate.example.com"]).await;
    let login = app
        .send(
            Method::POST,
            "/session/login",
            None,
            Some(json!({"key": ADMIN_KEY})),
        )
        .await;
    let set_cookie = login.headers[header::SET_COOKIE]
        .to_str()
        .expect("ascii")
        .to_string();
    assert!(set_cookie.contains("; Secure"), "{set_cookie}");
    let cookie = set_cookie.split(';').next().expect("pair").to_string();
    let post = |origin: &'static str| {
        app.client
            .post(format!("{}/team/new", app.base))
            .header(header::COOKIE, cookie.clone())
            .header(header::ORIGIN, origin)
            .json(&json!({"team_id": "t"}))
            .send()
    };
    let port = app.base.rsplit(':').next().expect("port");
    let local: &'static str = Box::leak(format!("http://localhost:{port}").into_boxed_str());
    assert_eq!(
        read(post(local).await.expect("sent")).await.status,
        StatusCode::FORBIDDEN
    );
    assert_eq!(
        read(post("https://gate.example.com").await.expect("sent"))
            .await
            .status,
        StatusCode::OK
    );
}

#[tokio::test]
async fn pages_carry_a_nonce_csp_and_every_answer_the_browser_headers() {
    let app = TestApp::spawn().await;
    let page = app
        .client
        .get(format!("{}/", app.base))
        .send()
        .await
        .expect("sent");
    let csp = page.headers()[header::CONTENT_SECURITY_POLICY]
        .to_str()
        .expect("ascii")
        .to_string();
    assert_eq!(page.headers()["x-content-type-options"], "nosniff");
    assert_eq!(page.headers()["referrer-policy"], "same-origin");
    let html = page.text().await.expect("html");
    assert!(csp.contains("frame-ancestors 'none'"), "{csp}");
    assert!(csp.contains("'wasm-unsafe-eval'"), "{csp}");
    assert!(!csp.contains("unsafe-inline"), "{csp}");
    let nonce = csp
        .split("'nonce-")
        .nth(1)
        .and_then(|rest| rest.split('\'').next())
        .expect("a nonce");
    assert!(
        html.contains(&format!("nonce=\"{nonce}\"")),
        "the page's scripts carry the nonce"
    );
    // Every script tag on the page carries it.
    assert_eq!(
        html.matches("<script").count(),
        html.matches(&format!("nonce=\"{nonce}\"")).count()
    );
    let again = app
        .client
        .get(format!("{}/", app.base))
        .send()
        .await
        .expect("sent");
    assert!(!again.headers()[header::CONTENT_SECURITY_POLICY]
        .to_str()
        .expect("ascii")
        .contains(nonce));
    let api = app.send(Method::GET, "/health", None, None).await;
    assert_eq!(api.headers["x-content-type-options"], "nosniff");
}

/// Sends `secret` in each of `fields` of `path`, in every shape, and as a field name; no error
/// may contain it.
async fn never_echoed(app: &TestApp, secret: &str, path: &str, fields: &[&str]) -> usize {
    let as_number: Value = secret
        .parse::<u64>()
        .map(Value::from)
        .unwrap_or(Value::Null);
    let shapes = [
        json!(secret),
        json!([secret]),
        json!({"nested": secret}),
        json!([[secret]]),
        as_number,
    ];
    let mut checked = 0;
    for field in fields {
        for shape in &shapes {
            let mut body = serde_json::Map::new();
            body.insert(field.to_string(), shape.clone());
            let body = Value::Object(body);
            let reply = app.post(path, body.clone()).await;
            if reply.status.is_client_error() {
                let text = reply.body.to_string();
                assert!(!text.contains(secret), "{path} {body}: {text}");
                checked += 1;
            }
        }
    }
    let mut named = serde_json::Map::new();
    named.insert(secret.to_string(), json!(1));
    let reply = app.post(path, Value::Object(named)).await;
    assert!(
        !reply.body.to_string().contains(secret),
        "{path}: {}",
        reply.body
    );
    checked + 1
}

#[tokio::test]
async fn no_error_repeats_a_submitted_key_or_password() {
    let app = TestApp::spawn_gateway().await;
    let key = app.team_with_key("t").await;
    let every_field: &[(&str, &[&str])] = &[
        ("/key/delete", &["keys"]),
        (
            "/key/update",
            &[
                "key",
                "user_id",
                "key_alias",
                "models",
                "max_budget",
                "duration",
                "metadata",
            ],
        ),
        ("/key/block", &["key"]),
        (
            "/key/generate",
            &[
                "team_id",
                "user_id",
                "key_alias",
                "models",
                "metadata",
                "max_budget",
            ],
        ),
        ("/session/login", &["key"]),
        (
            "/team/new",
            &[
                "team_id",
                "team_alias",
                "models",
                "tpm_limit",
                "budget_duration",
            ],
        ),
        ("/team/update", &["team_id", "max_budget", "metadata"]),
        ("/team/delete", &["team_ids"]),
        ("/team/block", &["team_id"]),
    ];
    let secret_fields: &[(&str, &[&str])] = &[
        ("/key/delete", &["keys"]),
        ("/key/update", &["key"]),
        ("/key/block", &["key"]),
        ("/session/login", &["key"]),
    ];
    let mut checked = 0;
    // Keys are recognisable: whatever field they were pasted into, they are never shown back.
    for secret in [key.as_str(), ADMIN_KEY] {
        for (path, fields) in every_field {
            checked += never_echoed(&app, secret, path, fields).await;
        }
    }
    // Passwords are not: they are never shown back from the fields that take secrets, nor
    // from any field whose type they do not fit.
    for secret in ["correct-horse-battery-staple", "8675309123"] {
        for (path, fields) in secret_fields {
            checked += never_echoed(&app, secret, path, fields).await;
        }
        for (path, fields) in every_field {
            for field in fields.iter() {
                let mut wrong = serde_json::Map::new();
                wrong.insert(field.to_string(), json!({"x": [secret, {"y": secret}]}));
                let reply = app.post(path, Value::Object(wrong)).await;
                assert!(
                    !reply.body.to_string().contains(secret),
                    "{path} {field}: {}",
                    reply.body
                );
                checked += 1;
            }
        }
    }
    for secret in [key.as_str(), "correct-horse-battery-staple"] {
        for path in [
            format!("/key/info?key={secret}&key=2"),
            format!("/key/list?page={secret}"),
            format!("/spend/logs?size={secret}"),
            format!("/key/info?key={secret}"),
        ] {
            let reply = app.get(&path).await;
            assert!(
                !reply.body.to_string().contains(secret),
                "{path}: {}",
                reply.body
            );
        }
    }
    let proxy = app
        .send(
            Method::POST,
            "/v1/chat/completions",
            Some(&key),
            Some(json!({"model": key, "messages": key})),
        )
        .await;
    assert!(!proxy.body.to_string().contains(&key), "{}", proxy.body);
    assert!(checked > 200, "{checked}");
}

#[cfg(unix)]
#[tokio::test]
async fn the_data_directory_and_its_files_are_owner_only() {
    use std::os::unix::fs::PermissionsExt;
    let mode = |path: &std::path::Path| {
        std::fs::metadata(path)
            .expect("exists")
            .permissions()
            .mode()
            & 0o777
    };
    let app = TestApp::spawn().await;
    if app.database_url().starts_with("postgres") {
        return; // no database files here: the directory is still checked by the process tests
    }
    let data = app.dir.path().join("data");
    app.team_with_key("t").await;
    assert_eq!(mode(&data), 0o700);
    for file in ["gatehouse.db", "gatehouse.db-wal", "gatehouse.db-shm"] {
        assert_eq!(mode(&data.join(file)), 0o600, "{file}");
    }
    // Existing files with wider modes are tightened at the next start.
    let stopped = app.stop().await;
    std::fs::set_permissions(&data, std::fs::Permissions::from_mode(0o755)).expect("chmod");
    std::fs::set_permissions(
        data.join("gatehouse.db"),
        std::fs::Permissions::from_mode(0o644),
    )
    .expect("chmod");
    let app = TestApp::spawn_again(stopped).await;
    assert_eq!(mode(&data), 0o700);
    assert_eq!(mode(&data.join("gatehouse.db")), 0o600);
    drop(app);
}

/// A connection from `source` (a loopback address of its own) that sends nothing.
async fn silent_from(app: &TestApp, source: &str) -> TcpStream {
    let socket = tokio::net::TcpSocket::new_v4().expect("socket");
    socket
        .bind(format!("{source}:0").parse().expect("source"))
        .expect("bind");
    socket
        .connect(addr(app).parse().expect("address"))
        .await
        .expect("connected")
}

/// `GET /health` over a connection from `source`: the status line.
async fn health_from(app: &TestApp, source: &str) -> String {
    let mut stream = silent_from(app, source).await;
    stream
        .write_all(b"GET /health HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
        .await
        .expect("sent");
    let answer = until_closed(&mut stream).await;
    String::from_utf8_lossy(&answer)
        .lines()
        .next()
        .unwrap_or_default()
        .to_string()
}

/// Sockets that never send a byte are closed at the header deadline, counted from the accept,
/// so they cannot hold every slot; one address's flood of them is cut at its share and does
/// not keep another address out.
#[tokio::test]
async fn silent_sockets_are_closed_and_cannot_take_every_slot() {
    let app = TestApp::spawn_with(&[
        "--header-timeout",
        "1s",
        "--max-connections",
        "4",
        "--unanswered-per-address",
        "2",
    ])
    .await;
    // Every slot, from four addresses: /health waits until the deadline frees them.
    let mut held = Vec::new();
    for i in 3..7 {
        held.push(silent_from(&app, &format!("127.0.0.{i}")).await);
    }
    let health = tokio::time::timeout(Duration::from_secs(30), health_from(&app, "127.0.0.20"))
        .await
        .expect("/health answered once the silent sockets were closed");
    assert_eq!(health, "HTTP/1.1 200 OK");
    for stream in &mut held {
        let rest = tokio::time::timeout(Duration::from_secs(30), until_closed(stream))
            .await
            .expect("closed by the server");
        assert!(rest.is_empty());
    }
    // One address floods: beyond its share its sockets are closed at once, and another
    // address is served while its share is held.
    let mut flood = Vec::new();
    for _ in 0..10 {
        flood.push(silent_from(&app, "127.0.0.8").await);
    }
    let health = tokio::time::timeout(Duration::from_secs(30), health_from(&app, "127.0.0.9"))
        .await
        .expect("another address is served");
    assert_eq!(health, "HTTP/1.1 200 OK");
    let mut closed = 0;
    for stream in &mut flood {
        let rest = tokio::time::timeout(Duration::from_secs(30), until_closed(stream))
            .await
            .expect("closed by the server");
        assert!(rest.is_empty());
        closed += 1;
    }
    assert_eq!(closed, 10);
}

/// One user holds at most their quota of keys, whoever issues them, and one caller's changes
/// are paced: a member's script can flood neither the key table nor the admin API, while the
/// admin key goes on.
#[tokio::test]
async fn a_members_keys_and_changes_are_bounded() {
    let app =
        TestApp::spawn_with(&["--keys-per-user", "4", "--admin-writes-per-minute", "6"]).await;
    crate::helpers::ok(&app.new_team(json!({"team_id": "t"})).await);
    crate::helpers::ok(
        &app.post("/user/new", json!({"user_id": "ada", "teams": ["t"]}))
            .await,
    );
    let ada = app
        .generate_key(json!({"team_id": "t", "user_id": "ada"}))
        .await;
    let ada = crate::helpers::ok(&ada)["key"]
        .as_str()
        .expect("key")
        .to_string();
    let own = json!({"team_id": "t"});
    for _ in 0..2 {
        let made = app
            .send(Method::POST, "/key/generate", Some(&ada), Some(own.clone()))
            .await;
        crate::helpers::ok(&made);
    }
    // Her fifth key, by her or by the admin: refused, and nothing is made.
    let fourth = app
        .send(Method::POST, "/key/generate", Some(&ada), Some(own.clone()))
        .await;
    let message =
        crate::helpers::refused(&fourth, StatusCode::TOO_MANY_REQUESTS, "rate_limit_error");
    assert!(message.contains("holds 4 keys"), "{message}");
    let by_admin = app
        .generate_key(json!({"team_id": "t", "user_id": "ada"}))
        .await;
    assert_eq!(
        by_admin.status,
        StatusCode::TOO_MANY_REQUESTS,
        "{}",
        by_admin.body
    );
    let listed = app.get("/key/list?user_id=ada").await;
    assert_eq!(listed.body["total_count"], 4, "{}", listed.body);

    // Six changes a minute: three are spent; three more go, the next waits.
    for _ in 0..3 {
        let changed = app
            .send(
                Method::POST,
                "/key/update",
                Some(&ada),
                Some(json!({"key": ada, "key_alias": "mine"})),
            )
            .await;
        crate::helpers::ok(&changed);
    }
    let paced = app
        .send(
            Method::POST,
            "/key/update",
            Some(&ada),
            Some(json!({"key": ada, "key_alias": "again"})),
        )
        .await;
    let message =
        crate::helpers::refused(&paced, StatusCode::TOO_MANY_REQUESTS, "rate_limit_error");
    assert!(message.contains("faster than one caller may"), "{message}");
    assert_eq!(paced.headers["retry-after"], "10");
    // Reads are not paced, the admin key is not paced, and the refused change changed nothing.
    let info = app
        .send(
            Method::GET,
            &format!("/key/info?key={ada}"),
            Some(&ada),
            None,
        )
        .await;
    assert_eq!(crate::helpers::ok(&info)["info"]["key_alias"], "mine");
    for i in 0..10 {
        crate::helpers::ok(
            &app.update_team(json!({"team_id": "t", "team_alias": format!("T{i}")}))
                .await,
        );
    }
    // Ten seconds on, one more of hers goes.
    app.clock.advance(10_000);
    let later = app
        .send(
            Method::POST,
            "/key/update",
            Some(&ada),
            Some(json!({"key": ada, "key_alias": "later"})),
        )
        .await;
    crate::helpers::ok(&later);
}
