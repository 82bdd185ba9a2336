#![recursion_limit = "512"]
//! The REST API against a real server and a real SQLite file.

mod alerts;
mod anthropic;
mod audit;
mod auth;
mod authority;
mod console;
mod contract;
mod contract_props;
mod errors;
mod fleet;
mod fuzz;
mod hardening;
mod helpers;
mod keys;
mod litellm;
mod live;
mod members;
mod metrics;
mod oidc;
mod openapi;
mod organizations;
mod outages;
mod people;
mod proxy;
mod routing;
mod teams;
mod users;
