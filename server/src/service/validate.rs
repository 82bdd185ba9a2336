//! The shape rules for ids, names and lists that clients send. Each rule lives here once.

use super::Error;

const MAX_ID: usize = 128;
const MAX_TEXT: usize = 256;
const MAX_MODELS: usize = 1_000;

/// Team ids: a letter or digit, then letters, digits, `.`, `_` or `-` (128 at most), so they are
/// safe in URLs, logs and file names.
pub fn team_id(param: &str, value: &str) -> Result<(), Error> {
    let mut chars = value.chars();
    let first_ok = chars.next().is_some_and(|c| c.is_ascii_alphanumeric());
    let rest_ok = chars.all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-'));
    if first_ok && rest_ok && value.len() <= MAX_ID {
        Ok(())
    } else {
        Err(Error::invalid(
            param,
            format!(
                "{param} must be 1 to {MAX_ID} characters: letters, digits, '.', '_' or '-', \
                 starting with a letter or digit"
            ),
        ))
    }
}

/// A key's public token: letters and digits, 64 at most.
pub fn token(param: &str, value: &str) -> Result<(), Error> {
    if !value.is_empty() && value.len() <= 64 && value.chars().all(|c| c.is_ascii_alphanumeric()) {
        Ok(())
    } else {
        Err(Error::invalid(
            param,
            format!("{param} must name keys by their tokens (letters and digits)"),
        ))
    }
}

/// User ids also allow what e-mail addresses and SSO subjects use: `@`, `+` and `:`.
pub fn user_id(param: &str, value: &str) -> Result<(), Error> {
    let ok = !value.is_empty()
        && value.len() <= MAX_TEXT
        && value
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-' | '@' | '+' | ':'));
    if ok {
        Ok(())
    } else {
        Err(Error::invalid(
            param,
            format!(
                "{param} must be 1 to {MAX_TEXT} characters: letters, digits, '.', '_', '-', \
                 '@', '+' or ':'"
            ),
        ))
    }
}

/// Human-readable names (aliases): any text but control characters, 1 to 256 characters.
pub fn label(param: &str, value: &str) -> Result<(), Error> {
    let ok = !value.trim().is_empty()
        && value.chars().count() <= MAX_TEXT
        && !value.chars().any(char::is_control);
    if ok {
        Ok(())
    } else {
        Err(Error::invalid(
            param,
            format!(
                "{param} must be 1 to {MAX_TEXT} characters without control characters \
                 (send null to clear it)"
            ),
        ))
    }
}

/// A list of model names: each without spaces or control characters; duplicates dropped,
/// order kept.
pub fn models(param: &str, models: Vec<String>) -> Result<Vec<String>, Error> {
    if models.len() > MAX_MODELS {
        return Err(Error::invalid(
            param,
            format!("{param} may list at most {MAX_MODELS} models"),
        ));
    }
    let mut seen = Vec::with_capacity(models.len());
    for model in models {
        let ok = !model.is_empty()
            && model.len() <= MAX_TEXT
            && !model.chars().any(|c| c.is_whitespace() || c.is_control());
        if !ok {
            return Err(Error::invalid(
                param,
                format!("{param} must be model names of 1 to {MAX_TEXT} characters without spaces"),
            ));
        }
        if !seen.contains(&model) {
            seen.push(model);
        }
    }
    Ok(seen)
}

/// Model aliases (a name a caller asks for, to the model served for it): names and models
/// shaped like model names, at most as many as a model list. Each alias must lead to a model
/// every list in `within` allows (the level's own, and its team's for a key), so an alias
/// never reaches a model the level may not use.
pub fn aliases(
    param: &str,
    aliases: crate::storage::Aliases,
    within: &[(&str, &[String])],
) -> Result<crate::storage::Aliases, Error> {
    if aliases.len() > MAX_MODELS {
        return Err(Error::invalid(
            param,
            format!("{param} may hold at most {MAX_MODELS} aliases"),
        ));
    }
    for (name, model) in &aliases {
        models(param, vec![name.clone(), model.clone()])?;
        if let Some((whose, _)) = within
            .iter()
            .find(|(_, list)| !super::model_list::allows(list, model))
        {
            return Err(Error::invalid(
                param,
                format!(
                    "{param}: '{name}' leads to '{model}', which {whose} may not use; add \
                     '{model}' to the models or alias another model"
                ),
            ));
        }
    }
    Ok(aliases)
}

/// The largest tokens- or requests-per-minute limit: 2^53, so that shared admission's Lua
/// scripts (whose numbers are doubles) compare counts exactly.
pub const MAX_LIMIT: u64 = 1 << 53;

/// A tokens- or requests-per-minute limit as stored.
pub fn limit(param: &str, value: Option<u64>) -> Result<Option<i64>, Error> {
    value
        .map(|v| match i64::try_from(v) {
            Ok(v) if v.unsigned_abs() <= MAX_LIMIT => Ok(v),
            _ => Err(Error::invalid(
                param,
                format!("{param} is too large: at most {MAX_LIMIT}"),
            )),
        })
        .transpose()
}

const DEFAULT_PAGE_SIZE: u64 = 10;
const MAX_PAGE_SIZE: u64 = 100;

/// A 1-based page number and a page size (default 10, at most 100): `(page, size, offset)`.
pub fn page(page: Option<u64>, size: Option<u64>) -> Result<(u64, u64, u64), Error> {
    let page = page.unwrap_or(1);
    if page == 0 || page > u64::from(u32::MAX) {
        return Err(Error::invalid("page", "page counts from 1"));
    }
    let size = size.unwrap_or(DEFAULT_PAGE_SIZE);
    if !(1..=MAX_PAGE_SIZE).contains(&size) {
        return Err(Error::invalid(
            "size",
            format!("size must be from 1 to {MAX_PAGE_SIZE}"),
        ));
    }
    Ok((page, size, (page - 1) * size))
}

/// A key's models must lie within its team's (see [`super::model_list`]).
pub fn models_within_team(
    param: &str,
    key_models: &[String],
    team_id: &str,
    team_models: &[String],
) -> Result<(), Error> {
    models_within(param, key_models, "team", team_id, team_models)
}

/// A level's models must lie within those of the level above it, `owner` (`team`,
/// `organization`) `id`.
pub fn models_within(
    param: &str,
    models: &[String],
    owner: &str,
    id: &str,
    owner_models: &[String],
) -> Result<(), Error> {
    match models
        .iter()
        .find(|m| !super::model_list::covers(owner_models, m))
    {
        None => Ok(()),
        Some(model) => Err(Error::invalid(
            param,
            format!(
                "Model '{model}' is not available to {owner} '{id}'; the {owner}'s models are: {}",
                owner_models.join(", ")
            ),
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn team_ids() {
        for ok in [
            "engineering-team",
            "a",
            "team_1.b",
            "0f8fad5b-d9cb-469f-a165-70867728950e",
        ] {
            assert!(team_id("team_id", ok).is_ok(), "{ok}");
        }
        let long = "a".repeat(129);
        for bad in [
            "",
            "-x",
            "a b",
            "a/b",
            "a'b",
            "<script>",
            "é",
            long.as_str(),
        ] {
            assert!(team_id("team_id", bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn model_lists_drop_duplicates_and_refuse_blanks() {
        let list = vec![
            "gpt-4".to_string(),
            "gpt-4".to_string(),
            "claude-2".to_string(),
        ];
        assert_eq!(
            models("models", list).expect("valid"),
            vec!["gpt-4", "claude-2"]
        );
        assert!(models("models", vec![String::new()]).is_err());
        assert!(models("models", vec!["gpt 4".to_string()]).is_err());
    }
}
