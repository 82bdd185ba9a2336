//! The budget contract as a property, for any admission backend and any chain of levels:
//! whatever requests ask (`max_tokens` up to `u64::MAX`, `n`, any prompt), whatever the
//! provider reports (its usage, none, a stream cut short, a failure), in any order and
//! concurrently, spend never passes `max_budget` at any level.
//!
//! A backend joins the suite by adding one line to `backends()`.

use crate::helpers::{redis_prefix, redis_url};
use proptest::prelude::*;
use serde_json::{json, Value};
use server::{
    gate::{
        admission::{Admission, Level, LevelId, LevelKind, Limits, Reservation},
        clock::Clock,
        local::LocalAdmission,
        redis::RedisAdmission,
    },
    money::{Nanos, Picos},
    providers::catalog::{ImageTokens, ModelSpec, Price, Tokenizer, Tokens},
    request::{self, Endpoint},
    service::estimate,
};
use std::sync::Arc;

/// Every admission backend the contract is checked against, each with counters of its own.
async fn backends() -> Vec<(&'static str, Arc<dyn Admission>)> {
    let mut backends: Vec<(&'static str, Arc<dyn Admission>)> = vec![(
        "in-process",
        Arc::new(LocalAdmission::new(Clock::manual(1_700_000_000_000))),
    )];
    if let Some(url) = redis_url().await {
        backends.push(("redis", redis_backend(&url).await));
    }
    backends
}

/// Shared admission in Redis, under a prefix of its own, loading unknown levels from an empty
/// database.
async fn redis_backend(url: &str) -> Arc<dyn Admission> {
    // A database of each backend's own (tests migrating one file at once would race), kept
    // for as long as the tests run.
    static DIRS: std::sync::Mutex<Vec<tempfile::TempDir>> = std::sync::Mutex::new(Vec::new());
    let dir = tempfile::tempdir().expect("temp dir");
    let storage = server::storage::connect(&format!(
        "sqlite://{}",
        dir.path().join("empty.db").display()
    ))
    .await
    .expect("storage");
    DIRS.lock().expect("dirs").push(dir);
    RedisAdmission::connect(url, &redis_prefix(), storage)
        .await
        .expect("Redis admission")
}

/// What the provider does with an admitted request.
#[derive(Debug, Clone)]
enum Outcome {
    /// Reports this usage (honest or not).
    Usage(u64, u64),
    /// Answers without usage: charged by counting the answer.
    NoUsage(String),
    /// A stream broken off after delivering this text.
    Cut(String),
    /// Fails: nothing charged.
    Fails,
}

#[derive(Debug, Clone)]
struct Request {
    max_tokens: Option<u64>,
    n: Option<u64>,
    prompt: String,
    images: usize,
    /// Which levels of the chain it is charged to (a bit per level; at least one).
    levels: u8,
    outcome: Outcome,
}

#[derive(Debug, Clone)]
struct Case {
    budgets: Vec<Option<i64>>,
    spec: ModelSpec,
    requests: Vec<Request>,
}

fn tokenizer() -> impl Strategy<Value = Tokenizer> {
    prop_oneof![
        Just(Tokenizer::O200k),
        Just(Tokenizer::Cl100k),
        Just(Tokenizer::Bytes)
    ]
}

fn spec() -> impl Strategy<Value = ModelSpec> {
    (
        0u128..200_000,
        0u128..600_000,
        proptest::option::of(0u128..1_000_000),
        1u64..200_000,
        tokenizer(),
        1u64..50_000,
    )
        .prop_map(
            |(input, output, audio, max_output, tokenizer, image)| ModelSpec {
                price: Price {
                    input: Picos(input),
                    output: Picos(output),
                    input_audio: audio.map(Picos),
                    ..Price::default()
                },
                max_output_tokens: max_output,
                tokenizer,
                image_tokens: ImageTokens {
                    low: image,
                    high: image,
                },
            },
        )
}

fn outcome() -> impl Strategy<Value = Outcome> {
    prop_oneof![
        (0u64..5_000, 0u64..5_000).prop_map(|(p, c)| Outcome::Usage(p, c)),
        (any::<u64>(), any::<u64>()).prop_map(|(p, c)| Outcome::Usage(p, c)),
        ".{0,200}".prop_map(Outcome::NoUsage),
        ".{0,200}".prop_map(Outcome::Cut),
        Just(Outcome::Fails),
    ]
}

fn request() -> impl Strategy<Value = Request> {
    (
        prop_oneof![
            Just(None),
            (1u64..2_000).prop_map(Some),
            any::<u64>().prop_map(Some)
        ],
        prop_oneof![Just(None), (0u64..200).prop_map(Some)],
        ".{0,400}",
        0usize..3,
        1u8..16,
        outcome(),
    )
        .prop_map(|(max_tokens, n, prompt, images, levels, outcome)| Request {
            max_tokens,
            n,
            prompt,
            images,
            levels,
            outcome,
        })
}

fn case() -> impl Strategy<Value = Case> {
    (
        proptest::collection::vec(proptest::option::of(0i64..2_000_000), 1..=5),
        spec(),
        proptest::collection::vec(request(), 1..40),
    )
        .prop_map(|(budgets, spec, requests)| Case {
            budgets,
            spec,
            requests,
        })
}

fn chain(case: &Case, run: usize) -> Vec<Level> {
    case.budgets
        .iter()
        .enumerate()
        .map(|(i, max)| Level {
            // Unique per run, so runs sharing a backend never share counters.
            // The chain's kinds in its order: key, member, team, organization, user.
            id: LevelId::new(
                [
                    LevelKind::Key,
                    LevelKind::Member,
                    LevelKind::Team,
                    LevelKind::Organization,
                    LevelKind::User,
                ][i % 5],
                &format!("run{run}-level{i}"),
            ),
            limits: Limits {
                max_budget: max.map(Nanos),
                ..Limits::default()
            },
            window: 0,
        })
        .collect()
}

fn body(request: &Request) -> Value {
    let mut content = vec![json!({"type": "text", "text": request.prompt})];
    for _ in 0..request.images {
        content.push(json!({"type": "image_url", "image_url": {"url": "https://x/y.png"}}));
    }
    let mut body = json!({"model": "m", "messages": [{"role": "user", "content": content}]});
    if let Some(max) = request.max_tokens {
        body["max_tokens"] = json!(max);
    }
    if let Some(n) = request.n {
        body["n"] = json!(n);
    }
    body
}

/// The bound of a chat body, parsed as the proxy parses it.
fn chat_bound(
    body: &serde_json::Value,
    spec: &ModelSpec,
) -> Result<estimate::Bound, request::Invalid> {
    let parsed = request::Request::parse(Endpoint::Chat, body.to_string().as_bytes())?;
    estimate::bound(&parsed, spec)
}

/// One request's life as the proxy lives it: bound, admit, then settle what the provider
/// reported (or what was counted) through the reservation, or release it.
async fn live(backend: Arc<dyn Admission>, spec: ModelSpec, chain: Vec<Level>, r: Request) {
    let Ok(bound) = chat_bound(&body(&r), &spec) else {
        return; // refused as invalid: nothing reserved
    };
    let levels: Vec<Level> = chain
        .into_iter()
        .enumerate()
        .filter(|(i, _)| r.levels & (1 << i) != 0)
        .map(|(_, level)| level)
        .collect();
    if levels.is_empty() {
        return;
    }
    let Ok(grant) = backend.admit(&levels, &bound.estimate(&spec.price)).await else {
        return;
    };
    let reservation = Reservation::new(grant, backend.clone());
    tokio::task::yield_now().await;
    let tokens = match r.outcome {
        Outcome::Usage(prompt, completion) => Tokens::plain(prompt, completion),
        Outcome::NoUsage(text) | Outcome::Cut(text) => {
            Tokens::plain(bound.prompt_tokens, estimate::count(spec.tokenizer, &text))
        }
        Outcome::Fails => return reservation.release().await,
    };
    reservation
        .settle(spec.price.cost(&tokens), tokens.total())
        .await;
}

async fn check(backend: &Arc<dyn Admission>, case: &Case, chain: &[Level]) -> Result<(), String> {
    for level in chain {
        let spend = backend.spend(&level.id).await.unwrap_or(Nanos::ZERO);
        if let Some(max) = level.limits.max_budget {
            if spend > max {
                return Err(format!(
                    "{} spent {spend:?} of {max:?} in {case:?}",
                    level.id
                ));
            }
        }
    }
    Ok(())
}

/// Requests one after another, checked after each.
async fn sequential(backend: Arc<dyn Admission>, case: &Case, run: usize) -> Result<(), String> {
    let chain = chain(case, run);
    for request in &case.requests {
        live(backend.clone(), case.spec, chain.clone(), request.clone()).await;
        check(&backend, case, &chain).await?;
    }
    Ok(())
}

/// All requests at once, on several threads.
async fn concurrent(backend: Arc<dyn Admission>, case: &Case, run: usize) -> Result<(), String> {
    let chain = chain(case, run);
    let tasks: Vec<_> = case
        .requests
        .iter()
        .map(|r| tokio::spawn(live(backend.clone(), case.spec, chain.clone(), r.clone())))
        .collect();
    for task in tasks {
        task.await.map_err(|e| e.to_string())?;
    }
    check(&backend, case, &chain).await
}

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(4)
        .enable_all()
        .build()
        .expect("runtime")
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(200))]

    #[test]
    fn spend_never_passes_a_budget(case in case()) {
        let runtime = runtime();
        for (name, backend) in runtime.block_on(backends()) {
            let result = runtime.block_on(async {
                sequential(backend.clone(), &case, 0).await?;
                concurrent(backend, &case, 1).await
            });
            if let Err(failure) = result {
                prop_assert!(false, "{name}: {failure}");
            }
        }
    }
}

/// The tail of a budget is used, not wasted: a request without a limit of its own still runs
/// when only a smaller answer fits.
#[test]
fn the_tail_of_a_budget_still_admits_a_smaller_answer() {
    let runtime = runtime();
    for (name, backend) in runtime.block_on(backends()) {
        runtime.block_on(async {
            let spec = ModelSpec {
                price: Price::plain(Picos(1_000), Picos(2_000)),
                max_output_tokens: 10_000,
                tokenizer: Tokenizer::O200k,
                image_tokens: ImageTokens { low: 1, high: 1 },
            };
            let level = Level {
                id: LevelId::new(LevelKind::Team, "tail"),
                limits: Limits {
                    max_budget: Some(Nanos(100)),
                    ..Limits::default()
                },
                window: 0,
            };
            let bound = chat_bound(
                &json!({"model": "m", "messages": [{"role": "user", "content": "hi"}]}),
                &spec,
            )
            .expect("valid");
            let grant = backend
                .admit(std::slice::from_ref(&level), &bound.estimate(&spec.price))
                .await
                .unwrap_or_else(|d| panic!("{name}: {d:?}"));
            assert!(grant.lowered, "{name}");
            assert!(
                grant.output_tokens >= 1 && grant.output_tokens < 10_000,
                "{name}"
            );
            assert!(grant.cost <= Nanos(100), "{name}");
            backend.release(&grant).await;
        });
    }
}
