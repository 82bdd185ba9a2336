//! `/model/info`: the models this gateway serves and their prices, for the console's forms.

use crate::state::AppState;
use app::types::{ModelEntry, ModelList, ModelPrice};
use axum::{extract::State, Json};
use utoipa_axum::{router::OpenApiRouter, routes};

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new().routes(routes!(info))
}

/// The models this gateway serves, with their prices.
#[utoipa::path(get, path = "/model/info", tag = "models",
    responses((status = 200, description = "The models", body = ModelList)))]
#[tracing::instrument(name = "models.info", level = "debug", skip_all)]
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
                input_cost_per_token: g.spec.price.input.usd(),
                output_cost_per_token: g.spec.price.output.usd(),
                max_output_tokens: Some(g.spec.max_output_tokens),
            },
        })
        .collect();
    Json(ModelList { data })
}
