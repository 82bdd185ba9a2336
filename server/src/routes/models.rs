//! `/model/info`: the models this gateway serves and their prices, for the console's forms.

use crate::{providers::catalog::picos_to_usd, state::AppState};
use app::types::{ModelEntry, ModelList, ModelPrice};
use axum::{extract::State, Json};
use utoipa_axum::{router::OpenApiRouter, routes};

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new().routes(routes!(info))
}

/// The models this gateway serves, with their prices.
#[utoipa::path(get, path = "/model/info", tag = "models",
    responses((status = 200, description = "The models", body = ModelList)))]
async fn info(State(state): State<AppState>) -> Json<ModelList> {
    let models = state.router.models();
    // A group's dearest prices: what a request to it may be charged.
    let data = models
        .names()
        .iter()
        .filter_map(|name| models.group(name))
        .map(|g| ModelEntry {
            model_name: g.name.clone(),
            model_info: ModelPrice {
                input_cost_per_token: picos_to_usd(g.spec.price.input),
                output_cost_per_token: picos_to_usd(g.spec.price.output),
                max_output_tokens: Some(g.spec.max_output_tokens),
            },
        })
        .collect();
    Json(ModelList { data })
}
