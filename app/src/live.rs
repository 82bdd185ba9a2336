//! Live figures: the teams and keys on screen follow `/team/events` (server-sent events), so
//! their spend, budget bars and status move while the page is open, without polling.

use crate::types::{KeyFigures, KeyInfo, LiveFigures, Team, TeamFigures};
use leptos::prelude::*;
use std::collections::HashMap;

/// The most keys a page follows (the server's limit per stream).
const MAX_KEYS: usize = 100;

/// The latest figures of the followed teams and keys, by id and by token.
#[derive(Clone, Copy)]
pub struct Live {
    teams: RwSignal<HashMap<String, TeamFigures>>,
    keys: RwSignal<HashMap<String, KeyFigures>>,
}

impl Live {
    /// Follows `teams` and `keys` (the first 100) while the calling view lives. On the server
    /// (and before hydration) the figures are the ones the page was rendered with.
    pub fn follow(teams: &[Team], keys: &[KeyInfo]) -> Self {
        let live = Self {
            teams: RwSignal::new(HashMap::new()),
            keys: RwSignal::new(HashMap::new()),
        };
        let team_ids: Vec<String> = teams.iter().map(|t| t.team_id.clone()).collect();
        let tokens: Vec<String> = keys
            .iter()
            .take(MAX_KEYS)
            .map(|k| k.token.clone())
            .collect();
        // Effects run only in the browser, once hydrated.
        Effect::new(move |_| stream::open(&team_ids, &tokens, live));
        live
    }

    /// One team's figures: the latest event's, else its answer's.
    pub fn team(self, team: &Team) -> Signal<LiveFigures> {
        let (id, rendered) = (
            team.team_id.clone(),
            LiveFigures::of(&team.budget, team.blocked),
        );
        let teams = self.teams;
        Signal::derive(move || {
            teams
                .with(|all| all.get(&id).map(|t| t.figures.clone()))
                .unwrap_or_else(|| rendered.clone())
        })
    }

    /// One key's figures: the latest event's, else its answer's.
    pub fn key(self, key: &KeyInfo) -> Signal<LiveFigures> {
        let (token, rendered) = (key.token.clone(), LiveFigures::of(&key.budget, key.blocked));
        let keys = self.keys;
        Signal::derive(move || {
            keys.with(|all| all.get(&token).map(|k| k.figures.clone()))
                .unwrap_or_else(|| rendered.clone())
        })
    }
}

#[cfg(feature = "hydrate")]
mod stream {
    use super::Live;
    use crate::{
        api,
        types::{KeyFigures, TeamFigures},
    };
    use leptos::prelude::*;
    use send_wrapper::SendWrapper;
    use serde::de::DeserializeOwned;
    use std::collections::HashMap;
    use wasm_bindgen::{closure::Closure, JsCast};
    use web_sys::{EventSource, MessageEvent};

    type Listener = Closure<dyn FnMut(MessageEvent)>;

    /// Merges each event's list into `figures`, by the id `id_of` reads.
    fn listener<T: DeserializeOwned + Send + Sync + 'static>(
        figures: RwSignal<HashMap<String, T>>,
        id_of: fn(&T) -> String,
    ) -> Listener {
        Closure::new(move |event: MessageEvent| {
            let Some(text) = event.data().as_string() else {
                return;
            };
            if let Ok(changed) = serde_json::from_str::<Vec<T>>(&text) {
                figures.update(|all| {
                    for item in changed {
                        all.insert(id_of(&item), item);
                    }
                });
            }
        })
    }

    pub fn open(team_ids: &[String], tokens: &[String], live: Live) {
        if team_ids.is_empty() && tokens.is_empty() {
            return;
        }
        let url = api::with_query(
            "/team/events",
            &[("team_ids", team_ids.join(",")), ("keys", tokens.join(","))],
        );
        let Ok(source) = EventSource::new(&url) else {
            return;
        };
        let teams = listener(live.teams, |t: &TeamFigures| t.team_id.clone());
        let keys = listener(live.keys, |k: &KeyFigures| k.token.clone());
        let _ = source.add_event_listener_with_callback("budgets", teams.as_ref().unchecked_ref());
        let _ = source.add_event_listener_with_callback("keys", keys.as_ref().unchecked_ref());
        // The browser reconnects by itself after a dropped connection; closing is ours.
        let open = SendWrapper::new((source, teams, keys));
        on_cleanup(move || {
            let (source, _teams, _keys) = open.take();
            source.close();
        });
    }
}

#[cfg(not(feature = "hydrate"))]
mod stream {
    use super::Live;

    pub fn open(_team_ids: &[String], _tokens: &[String], _live: Live) {}
}
