//! `coffer git setup`: the filter, diff and merge drivers in git's config, and
//! optionally a pre-commit hook running `coffer git check`.

use std::path::Path;

use crate::{Error, Result};

/// What `setup` writes. The single-shot clean/smudge stay beside `process` because
/// libgit2, JGit and GUIs do not speak the process protocol.
pub const SETTINGS: [(&str, &str); 8] = [
    ("filter.coffer.process", "coffer git filter-process"),
    ("filter.coffer.clean", "coffer git clean %f"),
    ("filter.coffer.smudge", "coffer git smudge %f"),
    ("filter.coffer.required", "true"),
    ("diff.coffer.textconv", "coffer git textconv"),
    ("merge.coffer.name", "coffer: merge decrypted values"),
    ("merge.coffer.driver", "coffer git merge %O %A %B %L %P"),
    // rerere records conflicted files, which for covered files is plaintext, under
    // .git/rr-cache: keep it off where secrets are merged.
    ("rerere.enabled", "false"),
];

/// What `coffer git setup --example` prints: the two files a credentials repository needs.
pub const EXAMPLE: &str = "\
# .gitattributes: the files the coffer filter keeps encrypted in git
secrets/** filter=coffer diff=coffer merge=coffer
*.enc.yaml filter=coffer diff=coffer merge=coffer

# .coffer.yaml: who opens which files. Each person is named once under keys:
# (`coffer team add NAME age1…` adds one) and referred to in the rules.
keys:
  - &alice age1ql3z7hjy54pw3hyww5ayyfg7zqgvc7w3j2elw8zmrj2kg5sfn9aqmcac8p
creation_rules:
  - path_regex: ^secrets/prod/
    kms: arn:aws:kms:eu-west-1:111122223333:alias/secrets
    age: [*alice]
  - path_regex: ^secrets/
    age: [*alice]
";

const HOOK: &str = "#!/bin/sh\n# Installed by `coffer git setup --hook`: refuse commits that stage secrets in plaintext.\nexec coffer git check\n";

/// Write the settings (idempotent). Returns the hook path when one was installed.
pub fn setup(dir: &Path, global: bool, hook: bool) -> Result<Option<std::path::PathBuf>> {
    let scope = if global { "--global" } else { "--local" };
    for (key, value) in SETTINGS {
        super::git(dir, &["config", scope, key, value], &[])?;
    }
    if !hook {
        return Ok(None);
    }
    let hooks = super::git(dir, &["rev-parse", "--git-path", "hooks"], &[])?;
    let hooks = dir.join(hooks);
    std::fs::create_dir_all(&hooks).map_err(|e| Error::io(&hooks, e))?;
    let path = hooks.join("pre-commit");
    match std::fs::read_to_string(&path) {
        Ok(existing) if existing == HOOK => return Ok(Some(path)),
        Ok(_) => {
            return Err(Error::Refused(format!(
                "{}: a pre-commit hook exists already; add `coffer git check` to it",
                path.display()
            )))
        }
        Err(_) => {}
    }
    std::fs::write(&path, HOOK).map_err(|e| Error::io(&path, e))?;
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755))
        .map_err(|e| Error::io(&path, e))?;
    Ok(Some(path))
}

/// Whether the coffer filter is configured for `repo` (its config, the user's or the
/// system's), so that `git add` runs it.
pub fn is_set_up(repo: &git2::Repository) -> bool {
    repo.config().is_ok_and(|c| {
        c.get_string("filter.coffer.process").is_ok() || c.get_string("filter.coffer.clean").is_ok()
    })
}
