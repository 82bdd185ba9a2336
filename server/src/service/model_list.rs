//! What a list of models allows, the one rule every level (key, team) uses. Entries are matched
//! against the model name a caller asks for (the `model_name` of the config's `model_list`,
//! after a key's or team's alias is resolved), as in LiteLLM:
//! - an empty list, `*`, `all-proxy-models` and `all-team-models` allow every model (a key's
//!   `all-team-models` means "whatever my team allows": the team's own list is checked too);
//! - an entry with `*` is a wildcard: `*` stands for any run of characters, so `openai/*`
//!   allows `openai/gpt-4o` and `gpt-*` allows `gpt-4o-mini`;
//! - any other entry is one model's exact name.

/// Entries that allow every model.
pub const ALL: [&str; 3] = ["*", "all-proxy-models", "all-team-models"];

fn allows_all(entry: &str) -> bool {
    ALL.contains(&entry)
}

/// Whether `pattern` (with `*` for any run of characters) matches all of `name`.
fn glob(pattern: &str, name: &str) -> bool {
    let mut parts = pattern.split('*');
    let first = parts.next().unwrap_or_default();
    let Some(mut rest) = name.strip_prefix(first) else {
        return false;
    };
    let parts: Vec<&str> = parts.collect();
    let Some((last, middle)) = parts.split_last() else {
        return rest.is_empty(); // no `*` at all: exact
    };
    for part in middle {
        match rest.find(part) {
            Some(at) => rest = &rest[at + part.len()..],
            None => return false,
        }
    }
    rest.len() >= last.len() && rest.ends_with(last)
}

/// Whether one entry allows `model`.
pub fn entry_allows(entry: &str, model: &str) -> bool {
    allows_all(entry) || glob(entry, model)
}

/// Whether the list allows `model`.
pub fn allows(list: &[String], model: &str) -> bool {
    list.is_empty() || list.iter().any(|entry| entry_allows(entry, model))
}

/// Whether the list allows every model.
pub fn allows_every(list: &[String]) -> bool {
    list.is_empty() || list.iter().any(|entry| allows_all(entry))
}

/// Whether everything `entry` allows, `list` allows too: decided at the API so that a key's
/// list never claims what its team refuses. A wildcard is covered by an entry that allows
/// all it can match (the same pattern, or a pattern ending in `*` whose prefix it starts with).
pub fn covers(list: &[String], entry: &str) -> bool {
    if allows_every(list) || entry == "all-team-models" {
        return true;
    }
    if allows_all(entry) {
        return false;
    }
    if !entry.contains('*') {
        return allows(list, entry);
    }
    list.iter().any(|outer| {
        outer == entry
            || outer
                .strip_suffix('*')
                .is_some_and(|prefix| !prefix.contains('*') && entry.starts_with(prefix))
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn list(entries: &[&str]) -> Vec<String> {
        entries.iter().map(|e| e.to_string()).collect()
    }

    #[test]
    fn exact_names_and_wildcards() {
        assert!(allows(&[], "gpt-4o"));
        for all in ALL {
            assert!(allows(&list(&[all]), "anything/at-all"));
        }
        let l = list(&["openai/*", "gpt-*", "claude-3-*-latest", "mistral"]);
        for yes in [
            "openai/gpt-4o",
            "openai/",
            "gpt-4o-mini",
            "claude-3-opus-latest",
            "mistral",
        ] {
            assert!(allows(&l, yes), "{yes}");
        }
        for no in [
            "openai",
            "azure/openai/x",
            "gpt",
            "xgpt-4",
            "claude-3-opus",
            "mistral-large",
            "mistra",
        ] {
            assert!(!allows(&l, no), "{no}");
        }
        // `*` in the middle may not match text that overlaps the suffix twice.
        assert!(glob("a*ba", "aba"));
        assert!(!glob("ab*ba", "aba"));
        assert!(glob("a**b", "ab"));
    }

    #[test]
    fn coverage() {
        let team = list(&["openai/*", "mistral"]);
        assert!(covers(&team, "openai/gpt-4o"));
        assert!(covers(&team, "openai/*"));
        assert!(covers(&team, "openai/gpt-*"));
        assert!(covers(&team, "mistral"));
        assert!(!covers(&team, "mistral-*"));
        assert!(!covers(&team, "*"));
        assert!(covers(&team, "all-team-models"));
        assert!(!covers(&team, "all-proxy-models"));
        assert!(!covers(&team, "gpt-4o"));
        assert!(covers(&[], "*"));
        assert!(covers(&list(&["all-proxy-models"]), "gpt-*"));
    }
}
