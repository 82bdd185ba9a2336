//! Live figures: the teams on screen follow `/team/events` (server-sent events), so their
//! spend, budget bars and status move while the page is open, without polling.

use crate::types::{Team, TeamFigures};
use leptos::prelude::*;
use std::collections::HashMap;

/// The latest figures of the followed teams, by id.
#[derive(Clone, Copy)]
pub struct Live(RwSignal<HashMap<String, TeamFigures>>);

impl Live {
    /// Follows `teams` while the calling view lives. On the server (and before hydration)
    /// the figures are the ones the page was rendered with.
    pub fn follow(teams: &[Team]) -> Self {
        let figures = RwSignal::new(HashMap::new());
        let ids: Vec<String> = teams.iter().map(|t| t.team_id.clone()).collect();
        // Effects run only in the browser, once hydrated.
        Effect::new(move |_| stream::open(&ids, figures));
        Self(figures)
    }

    /// One team's figures: the latest event's, else its answer's.
    pub fn team(self, team: &Team) -> Signal<TeamFigures> {
        let rendered = TeamFigures::of(team);
        let figures = self.0;
        Signal::derive(move || {
            figures
                .with(|all| all.get(&rendered.team_id).cloned())
                .unwrap_or_else(|| rendered.clone())
        })
    }
}

#[cfg(feature = "hydrate")]
mod stream {
    use crate::{api, types::TeamFigures};
    use leptos::prelude::*;
    use send_wrapper::SendWrapper;
    use std::collections::HashMap;
    use wasm_bindgen::{closure::Closure, JsCast};
    use web_sys::{EventSource, MessageEvent};

    pub fn open(ids: &[String], figures: RwSignal<HashMap<String, TeamFigures>>) {
        if ids.is_empty() {
            return;
        }
        let url = api::with_query("/team/events", &[("team_ids", ids.join(","))]);
        let Ok(source) = EventSource::new(&url) else {
            return;
        };
        let on_budgets = Closure::<dyn FnMut(MessageEvent)>::new(move |event: MessageEvent| {
            let Some(text) = event.data().as_string() else {
                return;
            };
            if let Ok(changed) = serde_json::from_str::<Vec<TeamFigures>>(&text) {
                figures.update(|all| {
                    for team in changed {
                        all.insert(team.team_id.clone(), team);
                    }
                });
            }
        });
        let _ =
            source.add_event_listener_with_callback("budgets", on_budgets.as_ref().unchecked_ref());
        // The browser reconnects by itself after a dropped connection; closing is ours.
        let open = SendWrapper::new((source, on_budgets));
        on_cleanup(move || {
            let (source, _listener) = open.take();
            source.close();
        });
    }
}

#[cfg(not(feature = "hydrate"))]
mod stream {
    use crate::types::TeamFigures;
    use leptos::prelude::*;
    use std::collections::HashMap;

    pub fn open(_ids: &[String], _figures: RwSignal<HashMap<String, TeamFigures>>) {}
}
