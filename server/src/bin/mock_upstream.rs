#![recursion_limit = "512"]
//! `mock-upstream`: the mock provider as a standalone OpenAI-compatible server, for the
//! benchmark and for trying Gatehouse against a real HTTP upstream.
//! Usage: `mock-upstream [PORT]` (default 0: a free port); prints the address it listens on.

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let port: u16 = match std::env::args().nth(1) {
        Some(arg) => arg
            .parse()
            .map_err(|_| anyhow::anyhow!("usage: mock-upstream [PORT]"))?,
        None => 0,
    };
    let listener = tokio::net::TcpListener::bind(("127.0.0.1", port)).await?;
    println!(
        "mock-upstream listening on http://{}/v1",
        listener.local_addr()?
    );
    axum::serve(listener, server::providers::mock::router()).await?;
    Ok(())
}
