use crate::{
    helpers::{TestApp, ADMIN_KEY},
    proxy::ask,
};
use reqwest::{header, StatusCode};
use serde_json::json;

const TOKEN: &str = "metrics-token-0123456789";

async fn scrape(app: &TestApp, token: Option<&str>) -> (StatusCode, String, String) {
    let mut request = app.client.get(format!("{}/metrics", app.base));
    if let Some(token) = token {
        request = request.bearer_auth(token);
    }
    let response = request.send().await.expect("sent");
    let status = response.status();
    let kind = response
        .headers()
        .get(header::CONTENT_TYPE)
        .map(|v| v.to_str().unwrap_or_default().to_string())
        .unwrap_or_default();
    (status, kind, response.text().await.expect("text"))
}

/// The value of the sample `series` (its name and labels, exactly), if present.
fn sample(text: &str, series: &str) -> Option<f64> {
    text.lines()
        .find_map(|line| line.strip_prefix(series)?.strip_prefix(' ')?.parse().ok())
}

#[tokio::test]
async fn metrics_count_requests_spend_refusals_and_budgets_under_litellm_names_too() {
    let app = TestApp::spawn_gateway_with(&["--metrics-token", TOKEN]).await;
    let team = app
        .new_team(json!({"team_id": "metered", "team_alias": "Metered Team", "max_budget": 10}))
        .await;
    assert_eq!(team.status, StatusCode::OK);
    let generated = app
        .generate_key(json!({"team_id": "metered", "key_alias": "meter-key", "models": ["gpt-4o"], "rpm_limit": 1, "max_budget": 2}))
        .await;
    let key = generated.body["key"].as_str().expect("key").to_string();
    let token = generated.body["token"].as_str().expect("token").to_string();

    assert_eq!(app.chat(&key, ask("gpt-4o")).await.status, StatusCode::OK);
    assert_eq!(
        app.chat(&key, ask("gpt-4o")).await.status,
        StatusCode::TOO_MANY_REQUESTS
    );
    assert_eq!(
        app.chat(&key, ask("gpt-4o-mini")).await.status,
        StatusCode::UNAUTHORIZED
    );

    let (status, kind, text) = scrape(&app, Some(TOKEN)).await;
    assert_eq!(status, StatusCode::OK, "{text}");
    assert!(kind.starts_with("text/plain; version=0.0.4"), "{kind}");
    let ours = format!("team=\"metered\",key=\"{token}\",model=\"gpt-4o\",status=\"200\"");
    assert_eq!(
        sample(&text, &format!("gatehouse_proxy_requests_total{{{ours}}}")),
        Some(1.0),
        "{text}"
    );
    assert_eq!(
        sample(&text, &format!("gatehouse_prompt_tokens_total{{{ours}}}")),
        Some(6.0)
    );
    assert_eq!(
        sample(
            &text,
            &format!("gatehouse_proxy_request_duration_seconds_count{{{ours}}}")
        ),
        Some(1.0)
    );
    let spend = sample(&text, &format!("gatehouse_spend_usd_total{{{ours}}}")).expect("spend");
    assert!((spend - 0.000016).abs() < 1e-12, "{spend}");
    let litellm = format!("end_user=\"\",hashed_api_key=\"{token}\",api_key_alias=\"\",model=\"gpt-4o\",team=\"metered\",team_alias=\"\",user=\"\"");
    assert_eq!(
        sample(&text, &format!("litellm_spend_metric{{{litellm}}}")),
        Some(spend)
    );
    assert_eq!(
        sample(&text, &format!("litellm_requests_metric{{{litellm}}}")),
        Some(1.0)
    );
    assert_eq!(
        sample(
            &text,
            "gatehouse_refusals_total{reason=\"rate_limit\",level=\"key\"}"
        ),
        Some(1.0)
    );
    assert_eq!(
        sample(
            &text,
            "gatehouse_refusals_total{reason=\"model_not_allowed\",level=\"key\"}"
        ),
        Some(1.0)
    );
    assert_eq!(
        sample(
            &text,
            "gatehouse_http_requests_total{route=\"/v1/chat/completions\",status=\"429\"}"
        ),
        Some(1.0)
    );
    let team_labels = "team=\"metered\",team_alias=\"Metered Team\"";
    let left = sample(
        &text,
        &format!("litellm_remaining_team_budget_metric{{{team_labels}}}"),
    )
    .expect("left");
    assert!((left - (10.0 - 0.000016)).abs() < 1e-9, "{left}");
    assert_eq!(
        sample(
            &text,
            &format!("litellm_team_max_budget_metric{{{team_labels}}}")
        ),
        Some(10.0)
    );
    let key_labels =
        format!("hashed_api_key=\"{token}\",api_key_alias=\"meter-key\",team=\"metered\"");
    let key_left = sample(
        &text,
        &format!("litellm_remaining_api_key_budget_metric{{{key_labels}}}"),
    )
    .expect("key left");
    assert!((key_left - (2.0 - 0.000016)).abs() < 1e-9, "{key_left}");
    assert!(text.contains("# TYPE gatehouse_spend_queue_rows gauge"));
    assert!(!text.contains(&key), "the secret key is never a label");

    // The refusals are also written per minute for the console (off the request path).
    let mut refusals = json!(null);
    for _ in 0..500 {
        let reply = app.get("/spend/refusals").await;
        assert_eq!(reply.status, StatusCode::OK, "{}", reply.body);
        if reply.body["total"] == 2 {
            refusals = reply.body;
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(10)).await;
    }
    assert_eq!(refusals["total"], 2, "{refusals}");
    let totals = refusals["totals"].as_array().expect("totals");
    for reason in ["rate_limit", "model_not_allowed"] {
        assert!(
            totals.contains(&json!({"level": "key", "reason": reason, "count": 1})),
            "{refusals}"
        );
    }
    assert_eq!(refusals["per_minute"].as_array().expect("minutes").len(), 2);
    let earlier = app
        .get("/spend/refusals?start=2020-01-01&end=2020-01-02")
        .await;
    assert_eq!(earlier.status, StatusCode::OK, "{}", earlier.body);
    assert_eq!(earlier.body["total"], 0, "{}", earlier.body);
    assert_eq!(
        app.get("/spend/refusals?start=yesterday").await.status,
        StatusCode::BAD_REQUEST
    );

    // The admin key reads it too; nobody else.
    assert_eq!(scrape(&app, Some(ADMIN_KEY)).await.0, StatusCode::OK);
    let (status, _, body) = scrape(&app, None).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    assert!(body.contains("\"error\""), "{body}");
    assert_eq!(
        scrape(&app, Some("metrics-token-wrong-000")).await.0,
        StatusCode::UNAUTHORIZED
    );
    assert_eq!(scrape(&app, Some(&key)).await.0, StatusCode::FORBIDDEN);
}

#[tokio::test]
async fn per_key_series_can_be_turned_off() {
    let app = TestApp::spawn_gateway_with(&["--metrics-per-key", "false"]).await;
    let key = app.team_with_key("quiet").await;
    assert_eq!(app.chat(&key, ask("gpt-4o")).await.status, StatusCode::OK);
    let (status, _, text) = scrape(&app, Some(ADMIN_KEY)).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(
        sample(
            &text,
            "gatehouse_proxy_requests_total{team=\"quiet\",model=\"gpt-4o\",status=\"200\"}"
        ),
        Some(1.0),
        "{text}"
    );
    assert!(
        !text.contains("litellm_remaining_api_key_budget_metric{"),
        "{text}"
    );
    assert!(!text.contains(",key=\""), "{text}");
}

#[tokio::test]
async fn a_short_metrics_token_is_refused_at_start() {
    let output = std::process::Command::new(env!("CARGO_BIN_EXE_gatehouse"))
        .args(["--metrics-token", "short"])
        .output()
        .expect("ran");
    assert!(!output.status.success());
    assert!(String::from_utf8_lossy(&output.stderr).contains("at least 16 characters"));
}
