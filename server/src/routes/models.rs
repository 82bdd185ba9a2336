//! `/model/info`: the models this gateway serves and their prices, for the console's forms.

use crate::state::AppState;
use app::types::{ModelEntry, ModelList, ModelPrice};
use axum::{extract::State, routing::get, Json, Router};

pub fn router() -> Router<AppState> {
    Router::new().route("/model/info", get(info))
}

async fn info(State(state): State<AppState>) -> Json<ModelList> {
    let data = state
        .models
        .names()
        .iter()
        .filter_map(|name| state.models.get(name))
        .map(|d| ModelEntry {
            model_name: d.model_name.clone(),
            model_info: ModelPrice {
                input_cost_per_token: d.price.input as f64 / 1e12,
                output_cost_per_token: d.price.output as f64 / 1e12,
            },
        })
        .collect();
    Json(ModelList { data })
}
