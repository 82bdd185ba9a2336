//! The request path: find the caller's key, check it may use the model, bound what the request
//! can cost, admit it at every level of its chain, call the provider, charge what it used and
//! log it. The proxy routes only translate HTTP to this and back.
//!
//! The provider is called from a task of its own, so a caller that goes away stops nothing:
//! the answer still arrives, is charged and logged (status 499). Every answered request is
//! charged once — by the provider's usage, or by counting what it delivered when there is
//! none — and never more than its reservation; a failed one is charged nothing.

use super::{
    estimate::{self, Bound},
    usage::{self, StreamMeter},
};
use crate::{
    gate::{
        admission::{Denial, Estimate, LevelId, LevelKind, RateInfo, Reservation, Unreachable},
        Gate, KeyEntry,
    },
    money::Nanos,
    providers::{
        adapter::Try,
        call::{self, Answer, UpstreamError},
        catalog::{self, ModelSpec, Tokens},
        router::{Pick, Router, Unavailable},
        Deployment, Group,
    },
    request::{Chat, Endpoint, Invalid, Request},
    service::secrets,
    spend::{Durability, SpendSink},
    storage::{member_id, SpendLog, Storage},
};
use axum::body::Bytes;
use futures_util::StreamExt;
use serde_json::{json, Value};
use std::{
    sync::Arc,
    time::{Duration, Instant},
};
use tokio::sync::{mpsc, oneshot};

/// Bodies up to this size are counted on the request's own thread (well under a millisecond).
const INLINE_ESTIMATE_BYTES: usize = 16 * 1024;

/// Chunks a stream may run ahead of a slow client.
const STREAM_BUFFER: usize = 32;

/// What the request path needs from the server's state.
#[derive(Clone, Copy)]
pub struct ProxyCtx<'a> {
    pub storage: &'a Arc<dyn Storage>,
    pub gate: &'a Arc<Gate>,
    pub router: &'a Arc<Router>,
    pub http: &'a reqwest::Client,
    /// What is read of a provider's answer at most.
    pub caps: call::Caps,
    pub spend: &'a SpendSink,
}

/// Why a request got no answer from the provider.
#[derive(Debug)]
pub enum ProxyError {
    /// No key, or not one of ours.
    Unauthenticated(&'static str),
    /// The request itself is wrong: the field and what to send instead.
    Invalid {
        param: Option<&'static str>,
        message: String,
    },
    Denied(Denial),
    Upstream(UpstreamError),
    /// No deployment of the model (or its fallbacks) could take the request.
    NoDeployment(Unavailable),
    /// The provider call's task died (a bug, not something a caller can cause).
    Internal,
}

/// What the caller is told besides the answer itself.
#[derive(Debug, Clone, Default)]
pub struct Meta {
    pub rate: RateInfo,
    /// The output limit the gateway sent instead of none, to fit what is left of a budget.
    pub lowered_to: Option<u64>,
    /// What the request cost and the key's spend after it (whole answers only).
    pub cost: Option<Nanos>,
    pub key_spend: Option<Nanos>,
    /// The deployment that answered, and the tries besides its own.
    pub model_id: Option<String>,
    pub retries: u32,
    pub fallbacks: u32,
}

pub enum Reply {
    Answer {
        body: Bytes,
        meta: Meta,
    },
    /// SSE bytes as the provider sends them.
    Stream {
        chunks: mpsc::Receiver<Bytes>,
        meta: Meta,
    },
}

fn invalid(param: Option<&'static str>, message: impl Into<String>) -> ProxyError {
    ProxyError::Invalid {
        param,
        message: message.into(),
    }
}

impl From<Invalid> for ProxyError {
    fn from(Invalid { param, message }: Invalid) -> Self {
        Self::Invalid { param, message }
    }
}

/// The caller's key, from its bearer token. A key this instance does not hold may have been
/// created on another one a moment ago: the database is asked (once; an unknown key is
/// remembered briefly) before the key is refused.
pub async fn find_key(ctx: ProxyCtx<'_>, token: Option<&str>) -> Result<Arc<KeyEntry>, ProxyError> {
    let token = token.ok_or(ProxyError::Unauthenticated(
        "No API key: send `Authorization: Bearer sk-...`.",
    ))?;
    let hash = secrets::sha256_hex(token);
    if let Some(key) = ctx.gate.key_by_hash(&hash) {
        return Ok(key);
    }
    let invalid = ProxyError::Unauthenticated("Invalid API key.");
    if ctx.gate.known_unknown(&hash) {
        return Err(invalid);
    }
    let unavailable = |err: crate::storage::StorageError| {
        tracing::warn!(%err, "cannot look a key up in the database");
        ProxyError::Denied(Denial::Unavailable(Unreachable::Database))
    };
    let Some(row) = ctx
        .storage
        .key_by_hash(&hash)
        .await
        .map_err(unavailable)?
        .filter(|row| row.accepts(&hash, ctx.gate.clock.now_secs()))
    else {
        // Unknown, or a rotated key's old secret past its grace period.
        ctx.gate.remember_unknown(&hash);
        return Err(invalid);
    };
    // Read again in order with the changes this instance follows: a change committed since the
    // first read is not undone by it.
    let _in_order = ctx.gate.in_order().await;
    if let Some(key) = ctx.gate.key_by_hash(&hash) {
        return Ok(key);
    }
    let Some(row) = ctx.storage.key(&row.key_id).await.map_err(unavailable)? else {
        return Err(invalid);
    };
    if !ctx.gate.has(&LevelId::new(LevelKind::Team, &row.team_id)) {
        let Some(team) = ctx.storage.team(&row.team_id).await.map_err(unavailable)? else {
            return Err(invalid);
        };
        ctx.gate.put_level(&team, false).await;
    }
    if let Some(user_id) = row.user_id.as_deref() {
        if !ctx.gate.has(&LevelId::new(LevelKind::User, user_id)) {
            if let Some(user) = ctx.storage.user(user_id).await.map_err(unavailable)? {
                ctx.gate.put_level(&user, false).await;
            }
        }
        let member = member_id(&row.team_id, user_id);
        if !ctx.gate.has(&LevelId::new(LevelKind::Member, &member)) {
            if let Some(member) = ctx.storage.member(&member).await.map_err(unavailable)? {
                ctx.gate.put_level(&member, false).await;
            }
        }
    }
    ctx.gate.put_key(&row, false).await;
    ctx.gate.key_by_hash(&hash).ok_or(invalid)
}

/// The models a key may use among those served, after its block and expiry are checked.
pub async fn models(ctx: ProxyCtx<'_>, token: Option<&str>) -> Result<Vec<String>, ProxyError> {
    let key = find_key(ctx, token).await?;
    ctx.gate.authorize(&key, None).map_err(ProxyError::Denied)?;
    Ok(ctx.gate.allowed_models(&key, ctx.router.models().names()))
}

/// The prompt tokens of a chat request as the gateway bounds them for its model (Anthropic's
/// `count_tokens`), once the key may use the model. A count is a request like any other to
/// every level's limits: it is admitted as one (its prompt must fit the budgets, it counts
/// toward RPM) and then costs nothing.
pub async fn count_tokens(
    ctx: ProxyCtx<'_>,
    token: Option<&str>,
    request: Chat,
) -> Result<u64, ProxyError> {
    let key = find_key(ctx, token).await?;
    let model = ctx.gate.resolve_model(&key, &request.model);
    let chain = ctx
        .gate
        .authorize(&key, Some(&model))
        .map_err(ProxyError::Denied)?;
    let group = ctx.router.models().group(&model).ok_or_else(|| {
        invalid(
            Some("model"),
            format!("Model '{model}' is not served here."),
        )
    })?;
    // Counting a long prompt takes milliseconds: off the threads that serve requests.
    let (request, spec) = (Request::Chat(request), group.spec);
    let bound = tokio::task::spawn_blocking(move || estimate::bound(&request, &spec))
        .await
        .map_err(|_| ProxyError::Internal)??;
    let grant = ctx
        .gate
        .admission
        .admit(&chain, &bound.estimate(&group.spec.price))
        .await
        .map_err(ProxyError::Denied)?;
    Reservation::new(grant, ctx.gate.admission.clone())
        .release()
        .await;
    Ok(bound.prompt_tokens)
}

/// Checks, admits and forwards one request as its caller sent it to `endpoint`; answers once
/// the provider has (or, for a stream, once it has started).
pub async fn forward(
    ctx: ProxyCtx<'_>,
    token: Option<&str>,
    body: &[u8],
    endpoint: Endpoint,
) -> Result<Reply, ProxyError> {
    let started = Instant::now();
    let key = find_key(ctx, token).await?;
    let request = Request::parse(endpoint, body)?;
    admit_and_call(ctx, &key, request, body.len(), started).await
}

/// [`forward`] for a request already parsed (one translated from another API).
pub async fn forward_request(
    ctx: ProxyCtx<'_>,
    token: Option<&str>,
    request: Request,
    size: usize,
) -> Result<Reply, ProxyError> {
    let started = Instant::now();
    let key = find_key(ctx, token).await?;
    admit_and_call(ctx, &key, request, size, started).await
}

async fn admit_and_call(
    ctx: ProxyCtx<'_>,
    key: &Arc<KeyEntry>,
    request: Request,
    size: usize,
    started: Instant,
) -> Result<Reply, ProxyError> {
    let key = key.clone();
    let endpoint = request.endpoint();
    let model = ctx.gate.resolve_model(&key, request.model());
    let chain = ctx
        .gate
        .authorize(&key, Some(&model))
        .map_err(ProxyError::Denied)?;
    let models = ctx.router.models();
    let group = models.group(&model).cloned().ok_or_else(|| {
        invalid(
            Some("model"),
            format!(
                "Model '{model}' is not served here; GET /v1/models lists the models your key \
                 may use."
            ),
        )
    })?;
    // The groups the request may reach, each one the key's chain allows: the bound (and so
    // the reservation) covers the dearest deployment of any of them.
    let allowed =
        |name: &String| name != &model && ctx.gate.authorize(&key, Some(name.as_str())).is_ok();
    let reachable = |map: &std::collections::HashMap<String, Vec<String>>| -> Vec<Arc<Group>> {
        map.get(&model)
            .into_iter()
            .flatten()
            .filter(|name| allowed(name))
            .filter_map(|name| models.group(name).cloned())
            .collect()
    };
    let plan = Plan {
        fallbacks: reachable(&models.settings.fallbacks),
        context_window: reachable(&models.settings.context_window_fallbacks),
        primary: group,
    };
    let spec = plan.spec();
    let (request, bound) = if size > INLINE_ESTIMATE_BYTES {
        // Counting a long prompt takes milliseconds: off the threads that serve requests.
        tokio::task::spawn_blocking(move || {
            let bound = estimate::bound(&request, &spec);
            (request, bound)
        })
        .await
        .map_err(|_| ProxyError::Internal)?
    } else {
        let bound = estimate::bound(&request, &spec);
        (request, bound)
    };
    let mut request = request;
    let bound = bound?;
    if !ctx.spend.accepting() {
        return Err(ProxyError::Denied(Denial::Unavailable(
            Unreachable::Database,
        )));
    }
    let grant = ctx
        .gate
        .admission
        .admit(&chain, &bound.estimate(&spec.price))
        .await
        .map_err(ProxyError::Denied)?;
    let lowered_to = (endpoint == Endpoint::Chat && grant.lowered).then_some(grant.output_tokens);
    if let Request::Chat(chat) = &mut request {
        if chat.stream {
            // The usage chunk is what the stream is charged by.
            chat.include_usage();
        }
    }
    let usage = Estimate {
        output_tokens: grant.output_tokens,
        ..bound.estimate(&spec.price)
    };
    let meta = Meta {
        rate: grant.rate.clone(),
        lowered_to,
        ..Meta::default()
    };
    let window = |kind: LevelKind| {
        grant
            .levels
            .iter()
            .find(|(level, _)| level.kind == kind)
            .map_or(0, |(_, window)| *window)
    };
    let (key_window, team_window, user_window, member_window, organization_window) = (
        window(LevelKind::Key),
        window(LevelKind::Team),
        window(LevelKind::User),
        window(LevelKind::Member),
        window(LevelKind::Organization),
    );
    let organization_id = grant
        .levels
        .iter()
        .find(|(level, _)| level.kind == LevelKind::Organization)
        .map(|(level, _)| level.id.to_string());
    let call = Call {
        reservation: Reservation::new(grant, ctx.gate.admission.clone()),
        log: SpendLog {
            request_id: format!("chatcmpl-{}", uuid::Uuid::new_v4().simple()),
            ts_ms: ctx.gate.clock.now_ms(),
            key_id: key.key_id.clone(),
            team_id: key.team_id().to_string(),
            user_id: key.user_id(),
            model,
            prompt_tokens: 0,
            completion_tokens: 0,
            cost: Nanos::ZERO,
            latency_ms: 0,
            status: 0,
            key_window,
            team_window,
            user_window,
            member_window,
            organization_id,
            organization_window,
            model_id: None,
            retries: 0,
            fallbacks: 0,
        },
        deployment: plan.primary.deployments[0].clone(),
        pick: None,
        plan,
        usage,
        router: ctx.router.clone(),
        bound,
        request,
        started,
        meta,
        http: ctx.http.clone(),
        caps: ctx.caps,
        sink: ctx.spend.clone(),
    };
    let (reply, answer) = oneshot::channel();
    tokio::spawn(call.run(reply));
    answer.await.unwrap_or(Err(ProxyError::Internal))
}

/// The groups a request may be answered by, in the order they are tried.
struct Plan {
    primary: Arc<Group>,
    /// `fallbacks`, then (only for a prompt too long) `context_window_fallbacks`.
    fallbacks: Vec<Arc<Group>>,
    context_window: Vec<Arc<Group>>,
}

impl Plan {
    /// A spec that bounds the request at every deployment it may reach.
    fn spec(&self) -> ModelSpec {
        self.fallbacks
            .iter()
            .chain(&self.context_window)
            .fold(self.primary.spec, |spec, group| {
                catalog::either(&spec, &group.spec)
            })
    }
}

/// An admitted request on its way to the provider and back.
struct Call {
    reservation: Reservation,
    /// The spend row, filled in as the answer comes.
    log: SpendLog,
    /// The deployment trying (then answering) the request, and its hold on its limits.
    deployment: Arc<Deployment>,
    pick: Option<Pick>,
    plan: Plan,
    /// What the request can use, for deployments' `tpm`.
    usage: Estimate,
    router: Arc<Router>,
    bound: Bound,
    /// As every provider gets it: its model and output limit are set per try.
    request: Request,
    started: Instant,
    meta: Meta,
    http: reqwest::Client,
    caps: call::Caps,
    sink: SpendSink,
}

type ReplyTo = oneshot::Sender<Result<Reply, ProxyError>>;

type Chunks = futures_util::stream::BoxStream<'static, Result<Bytes, UpstreamError>>;

/// What a successful try brought.
enum Got {
    Json(Bytes, Value),
    /// A stream that has sent its first chunk (the chunk comes first again).
    Stream(Chunks),
}

/// The output limit one try sends: what admission granted, within the deployment's own limit
/// (a request that may fall back to a model with a smaller one), in the field the caller used —
/// or, when it set none, the one the deployment's model takes.
fn output_limit(chat: &mut Chat, bound: &Bound, granted: u64, deployment: &Deployment) {
    use estimate::LimitField;
    let limit = granted.min(deployment.spec.max_output_tokens);
    if bound.explicit_limit && limit == bound.output_tokens {
        return; // the caller's own limit, as sent
    }
    let field = if bound.explicit_limit {
        bound.limit_field
    } else {
        estimate::limit_field_for(deployment.upstream_model())
    };
    let (max_tokens, max_completion_tokens) = match field {
        LimitField::MaxTokens => (true, false),
        LimitField::MaxCompletionTokens => (false, true),
        LimitField::Both => (true, true),
    };
    chat.max_tokens = max_tokens.then_some(limit);
    chat.max_completion_tokens = max_completion_tokens.then_some(limit);
}

/// Why the last try (or pick) failed.
enum Failure {
    Upstream(UpstreamError),
    Unavailable(Unavailable),
}

/// Whether a provider refused a prompt for its length (OpenAI's, Anthropic's and vLLM's words).
fn too_long(err: &UpstreamError) -> bool {
    let UpstreamError::Rejected { message } = err else {
        return false;
    };
    let message = message.to_ascii_lowercase();
    [
        "context length",
        "context_length_exceeded",
        "context window",
        "context limit",
        "prompt is too long",
        "too many tokens",
    ]
    .iter()
    .any(|words| message.contains(words))
}

impl Call {
    /// Tries the plan's groups in order, each up to `1 + num_retries` times on the deployments
    /// its strategy picks, until one answers; a prompt too long goes to the context-window
    /// fallbacks instead. A stream counts as answered once its first chunk has come.
    async fn run(mut self, reply: ReplyTo) {
        let settings = &self.router.models().settings;
        let (num_retries, retry_after) = (settings.num_retries, settings.retry_after);
        let deadline = self.started + settings.timeout;
        let mut groups: std::collections::VecDeque<Arc<Group>> =
            std::iter::once(self.plan.primary.clone())
                .chain(std::mem::take(&mut self.plan.fallbacks))
                .collect();
        let mut context_window = Some(std::mem::take(&mut self.plan.context_window));
        let mut last = Failure::Upstream(UpstreamError::Unreachable);
        let mut first = true;
        let mut tried_any = false;
        'groups: while let Some(group) = groups.pop_front() {
            if !std::mem::take(&mut first) {
                self.meta.fallbacks += 1;
            }
            let mut tried: Vec<usize> = Vec::new();
            for attempt in 0..=num_retries {
                if attempt > 0 {
                    self.meta.retries += 1;
                    let left = deadline.saturating_duration_since(Instant::now());
                    if !retry_after.is_zero() {
                        tokio::time::sleep(retry_after.min(left)).await;
                    }
                }
                let left = deadline.saturating_duration_since(Instant::now());
                if left.is_zero() {
                    last = Failure::Upstream(UpstreamError::Timeout);
                    break 'groups;
                }
                let pick = match self.router.pick(&group, &tried, &self.usage).await {
                    Ok(pick) => pick,
                    Err(unavailable) => {
                        let unreachable = matches!(unavailable, Unavailable::Unreachable(_));
                        // A provider's own failure in this request says more than "cooling".
                        if unreachable || !matches!(last, Failure::Upstream(_)) || !tried_any {
                            last = Failure::Unavailable(unavailable);
                        }
                        if unreachable {
                            break 'groups;
                        }
                        continue 'groups;
                    }
                };
                let deployment = pick.deployment.clone();
                tried.push(deployment.index);
                tried_any = true;
                let tried_at = Instant::now();
                match self.try_once(&deployment, left).await {
                    Ok(got) => {
                        self.router.succeeded(&deployment, tried_at.elapsed());
                        self.meta.model_id = Some(deployment.id.clone());
                        self.log.model.clone_from(&group.name);
                        self.deployment = deployment;
                        self.pick = Some(pick);
                        match got {
                            Got::Json(body, answer) => self.answer(body, answer, reply).await,
                            Got::Stream(chunks) => self.stream(chunks, reply).await,
                        }
                        return;
                    }
                    Err(UpstreamError::TooLarge) => {
                        // The provider answered, more than the gateway reads: it did the work,
                        // and the request may simply ask for that much. Not tried again, the
                        // deployment not blamed; charged the most it could cost.
                        self.meta.model_id = Some(deployment.id.clone());
                        self.log.model.clone_from(&group.name);
                        self.deployment = deployment;
                        self.pick = Some(pick);
                        self.too_large(reply).await;
                        return;
                    }
                    Err(err) => {
                        self.router.failed(&deployment, &err, status_of(&err)).await;
                        pick.settle(0).await;
                        if too_long(&err) {
                            if let Some(next) = context_window.take().filter(|g| !g.is_empty()) {
                                groups = next.into();
                                last = Failure::Upstream(err);
                                continue 'groups;
                            }
                        }
                        let refused = matches!(err, UpstreamError::Rejected { .. });
                        // A lone deployment's own rate limit is not retried at once.
                        let limited = matches!(err, UpstreamError::RateLimited { .. })
                            && group.deployments.len() == 1;
                        last = Failure::Upstream(err);
                        if refused {
                            break 'groups; // the request's fault: elsewhere too
                        }
                        if limited {
                            continue 'groups;
                        }
                    }
                }
            }
        }
        self.fail(last, reply).await
    }

    /// One try at one deployment.
    async fn try_once(
        &mut self,
        deployment: &Deployment,
        left: Duration,
    ) -> Result<Got, UpstreamError> {
        self.request.set_model(deployment.upstream_model());
        if let Request::Chat(chat) = &mut self.request {
            output_limit(chat, &self.bound, self.usage.output_tokens, deployment);
        }
        let at = Try {
            http: &self.http,
            request_id: &self.log.request_id,
            created: self.log.ts_ms / 1000,
            timeout: deployment.timeout,
            stream_timeout: deployment.stream_timeout,
            limit: left,
            caps: &self.caps,
        };
        match deployment.upstream.send(&self.request, &at).await? {
            Answer::Json(body) => {
                let answer = serde_json::from_slice::<Value>(&body)
                    .ok()
                    .filter(Value::is_object);
                match answer {
                    Some(answer) => Ok(Got::Json(body, answer)),
                    None => {
                        tracing::warn!(model = %deployment.model_name, "upstream answer is not JSON");
                        Err(UpstreamError::BadAnswer)
                    }
                }
            }
            Answer::Stream(mut chunks) => {
                // Answered once a chunk with something in it came, within the deadline.
                let first = tokio::time::timeout(left, async {
                    loop {
                        match chunks.next().await {
                            Some(Ok(bytes)) if bytes.is_empty() => continue,
                            Some(Ok(bytes)) => return Ok(bytes),
                            Some(Err(err)) => return Err(err),
                            None => return Err(UpstreamError::BrokeOff),
                        }
                    }
                });
                let first = first.await.map_err(|_| UpstreamError::Timeout)??;
                Ok(Got::Stream(
                    futures_util::stream::once(async move { Ok(first) })
                        .chain(chunks)
                        .boxed(),
                ))
            }
        }
    }

    /// No try succeeded: nothing is charged, the failure is logged with the status the caller
    /// gets.
    async fn fail(mut self, failure: Failure, reply: ReplyTo) {
        self.reservation.release().await;
        let (status, err) = match failure {
            Failure::Upstream(err) => (status_of(&err), ProxyError::Upstream(err)),
            Failure::Unavailable(Unavailable::Unreachable(denial)) => {
                (503, ProxyError::Denied(denial))
            }
            Failure::Unavailable(unavailable) => (
                match unavailable {
                    Unavailable::AtLimit { .. } => 429,
                    _ => 503,
                },
                ProxyError::NoDeployment(unavailable),
            ),
        };
        self.log.status = i64::from(status);
        self.log.latency_ms = elapsed_ms(self.started);
        self.log.retries = i64::from(self.meta.retries);
        self.log.fallbacks = i64::from(self.meta.fallbacks);
        self.sink.record(self.log).await;
        let _ = reply.send(Err(err));
    }

    async fn answer(self, body: Bytes, answer: Value, reply: ReplyTo) {
        let tokens = usage::from_json(&answer).unwrap_or_else(|| {
            Tokens::plain(
                self.bound.prompt_tokens,
                estimate::answer_tokens(&answer, self.deployment.spec.tokenizer),
            )
        });
        let status = if reply.is_closed() { 499 } else { 200 };
        let (cost, key_spend, mut meta) = self.charge(tokens, status).await;
        meta.cost = Some(cost);
        meta.key_spend = Some(key_spend);
        let _ = reply.send(Ok(Reply::Answer { body, meta }));
    }

    /// Passes the stream through chunk by chunk; when it ends (or breaks, or times out) charges
    /// what it used. A caller that leaves does not stop it: the rest is read and charged.
    async fn stream(self, mut stream: Chunks, reply: ReplyTo) {
        let (tx, chunks) = mpsc::channel(STREAM_BUFFER);
        let meta = self.meta.clone();
        let mut client = reply
            .send(Ok(Reply::Stream { chunks, meta }))
            .is_ok()
            .then_some(tx);
        let strict = self.sink.durability() == Durability::Strict;
        let mut meter = StreamMeter::new(self.caps.line);
        // Strict durability: the stream's end goes out only once its spend row is committed.
        let mut held: Vec<Bytes> = Vec::new();
        let mut held_bytes = 0_usize;
        let mut failure = None;
        // However steadily it comes, a stream ends at its overall deadline.
        let deadline = tokio::time::sleep(self.caps.stream);
        tokio::pin!(deadline);
        loop {
            // A caller that leaves is noticed while the provider is still thinking.
            let item = match &client {
                Some(tx) => tokio::select! {
                    item = stream.next() => item,
                    () = tx.closed() => {
                        client = None;
                        continue;
                    }
                    () = &mut deadline => Some(Err(UpstreamError::Timeout)),
                },
                None => tokio::select! {
                    item = stream.next() => item,
                    () = &mut deadline => Some(Err(UpstreamError::Timeout)),
                },
            };
            let Some(item) = item else { break };
            match item {
                Ok(bytes) => {
                    // A line past the cap: what came of it went to the caller, and is charged.
                    // Nothing after `[DONE]` counts: it is passed on, not read.
                    let too_long = !meter.done && meter.feed(&bytes).is_err();
                    if strict && meter.done {
                        // The end of the last event, held to the line cap at most.
                        if held_bytes.saturating_add(bytes.len()) <= self.caps.line {
                            held_bytes += bytes.len();
                            held.push(bytes);
                        }
                        continue;
                    }
                    if let Some(tx) = &client {
                        // A caller that stops reading does not hold the stream past its
                        // deadline either.
                        let sent = tokio::select! {
                            sent = tx.send(bytes) => sent.is_ok(),
                            () = &mut deadline => {
                                failure = Some(UpstreamError::Timeout);
                                break;
                            }
                        };
                        if !sent {
                            client = None;
                        }
                    }
                    if too_long {
                        failure = Some(UpstreamError::TooLarge);
                        break;
                    }
                }
                Err(err) => {
                    failure = Some(err);
                    break;
                }
            }
        }
        let status = match &failure {
            Some(err) => status_of(err),
            None if client.as_ref().is_none_or(mpsc::Sender::is_closed) => 499,
            None => 200,
        };
        let tokens = meter.usage.unwrap_or_else(|| {
            let counted = estimate::count(self.deployment.spec.tokenizer, &meter.delivered);
            Tokens::plain(self.bound.prompt_tokens, counted.max(meter.output_chunks))
        });
        self.charge(tokens, status).await;
        let Some(tx) = client else { return };
        if let Some(err) = failure {
            // A line the provider left unfinished is ended first: the event must be one.
            let end = if meter.mid_line() { "\n\n" } else { "" };
            let _ = tx
                .send(Bytes::from(format!("{end}{}", error_event(&err))))
                .await;
        }
        for bytes in held {
            if tx.send(bytes).await.is_err() {
                break;
            }
        }
    }

    /// An answer larger than the gateway reads: a 502, charged all the request could use.
    async fn too_large(self, reply: ReplyTo) {
        let all = self.usage.tokens(self.usage.output_tokens);
        let tokens = Tokens::plain(
            self.usage.prompt_tokens,
            all.saturating_sub(self.usage.prompt_tokens),
        );
        self.charge(tokens, status_of(&UpstreamError::TooLarge))
            .await;
        let _ = reply.send(Err(ProxyError::Upstream(UpstreamError::TooLarge)));
    }

    /// Settles the reservation to what `tokens` cost (never more than it) and logs the
    /// request; answers its cost, the key's spend after it, and the meta to send.
    async fn charge(mut self, tokens: Tokens, status: u16) -> (Nanos, Nanos, Meta) {
        if let Some(pick) = self.pick.take() {
            pick.settle(tokens.total()).await;
        }
        let mut cost = self.deployment.spec.price.cost(&tokens);
        let reserved = self.reservation.grant().cost;
        if cost > reserved {
            tracing::warn!(
                model = %self.log.model,
                cost = cost.0,
                reserved = reserved.0,
                prompt_tokens = tokens.prompt,
                completion_tokens = tokens.completion,
                "the provider reported more than the request's bound; charged the bound"
            );
            cost = reserved;
        }
        let settled = self.reservation.settle(cost, tokens.total()).await;
        let key_spend = settled.spend.first().copied().unwrap_or(Nanos::ZERO);
        self.log.prompt_tokens = i64::try_from(tokens.prompt).unwrap_or(i64::MAX);
        self.log.completion_tokens = i64::try_from(tokens.completion).unwrap_or(i64::MAX);
        self.log.cost = cost;
        self.log.status = i64::from(status);
        self.log.model_id.clone_from(&self.meta.model_id);
        self.log.retries = i64::from(self.meta.retries);
        self.log.fallbacks = i64::from(self.meta.fallbacks);
        self.log.latency_ms = elapsed_ms(self.started);
        self.sink.record(self.log).await;
        (cost, key_spend, self.meta)
    }
}

fn elapsed_ms(started: Instant) -> i64 {
    i64::try_from(started.elapsed().as_millis()).unwrap_or(i64::MAX)
}

/// The HTTP status a caller gets for an upstream failure (logged with the request too).
pub fn status_of(err: &UpstreamError) -> u16 {
    match err {
        UpstreamError::Timeout => 504,
        UpstreamError::RateLimited { .. } => 429,
        UpstreamError::Rejected { .. } => 400,
        UpstreamError::Unreachable
        | UpstreamError::Failed { .. }
        | UpstreamError::BrokeOff
        | UpstreamError::BadAnswer
        | UpstreamError::TooLarge => 502,
    }
}

/// The `error.type` of an upstream failure.
pub fn upstream_kind(err: &UpstreamError) -> &'static str {
    match err {
        UpstreamError::Timeout => "timeout",
        UpstreamError::RateLimited { .. } => "rate_limit_error",
        UpstreamError::Rejected { .. } => "invalid_request_error",
        _ => "upstream_error",
    }
}

/// The SSE event that ends a stream the provider broke off.
fn error_event(err: &UpstreamError) -> String {
    let body = json!({"error": {
        "message": call::describe(err),
        "type": upstream_kind(err),
        "param": null,
        "code": status_of(err).to_string(),
    }});
    format!("data: {body}\n\n")
}
