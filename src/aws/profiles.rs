//! The shared config and credentials files, for what coffer does itself rather than the
//! SDK: which profiles exist, and the way a profile's credentials are made (a base
//! identity, an MFA device's session on it, then roles assumed one on another), with the
//! aws CLI's cache key for each role so that coffer and the aws CLI share sessions.

use std::collections::HashMap;
use std::path::PathBuf;

/// A file's sections: profile name to its settings.
pub type Sections = HashMap<String, HashMap<String, String>>;

/// What the shared files say (never their keys' secrets), and which files were read.
#[derive(Default)]
pub struct Profiles {
    config: Sections,
    credentials: Sections,
    /// The files looked in, for errors naming them.
    pub files: Vec<PathBuf>,
    credentials_file: Option<PathBuf>,
}

#[derive(Debug, PartialEq, Eq, thiserror::Error)]
pub enum Error {
    #[error("unknown AWS profile {profile:?} (not in {})", files.join(", "))]
    Unknown { profile: String, files: Vec<String> },
    #[error("AWS profile {0:?}: role_arn needs source_profile or credential_source")]
    NoSource(String),
    #[error("AWS profile {0:?}: its source_profile chain loops")]
    Loop(String),
}

impl Profiles {
    /// The config file (`[default]`, `[profile NAME]`) and the credentials file (`[NAME]`),
    /// either of which may be missing.
    pub fn read(config: Option<PathBuf>, credentials: Option<PathBuf>) -> Profiles {
        let mut p = Profiles {
            credentials_file: credentials.clone(),
            ..Profiles::default()
        };
        for (path, is_config) in [(config, true), (credentials, false)] {
            let Some(path) = path else { continue };
            if let Ok(text) = std::fs::read_to_string(&path) {
                let sections = parse(&text, is_config);
                if is_config {
                    p.config = sections;
                } else {
                    p.credentials = sections;
                }
            }
            p.files.push(path);
        }
        p
    }

    #[cfg(test)]
    fn from_texts(config: &str, credentials: &str) -> Profiles {
        Profiles {
            config: parse(config, true),
            credentials: parse(credentials, false),
            files: vec!["config".into(), "credentials".into()],
            credentials_file: None,
        }
    }

    /// `default` always exists, as the aws CLI has it: naming it with no files means the
    /// rest of the default chain.
    pub fn exists(&self, name: &str) -> bool {
        name == "default" || self.config.contains_key(name) || self.credentials.contains_key(name)
    }

    /// `name` must exist.
    pub fn check(&self, name: &str) -> Result<(), Error> {
        if self.exists(name) {
            return Ok(());
        }
        Err(Error::Unknown {
            profile: name.to_string(),
            files: self.files.iter().map(|f| f.display().to_string()).collect(),
        })
    }

    /// A setting of `profile`: the config file's, else the credentials file's (the SDK
    /// merges the two). An empty value is no value.
    fn get(&self, profile: &str, key: &str) -> Option<&str> {
        [&self.config, &self.credentials]
            .iter()
            .find_map(|f| f.get(profile)?.get(key))
            .map(String::as_str)
            .filter(|v| !v.is_empty())
    }

    /// The long-term keys of a profile that is its own `source_profile` (a role on the
    /// profile's own keys), read from the credentials file when needed, not kept.
    pub fn own_keys(&self, name: &str) -> Option<(String, zeroize::Zeroizing<String>)> {
        let text =
            zeroize::Zeroizing::new(std::fs::read_to_string(self.credentials_file.as_ref()?).ok()?);
        let mut current = None;
        let (mut id, mut secret) = (None, None);
        for line in text.lines() {
            let line = line.trim();
            if let Some(h) = line.strip_prefix('[').and_then(|l| l.split_once(']')) {
                current = Some(h.0.trim() == name);
                continue;
            }
            if current != Some(true) {
                continue;
            }
            if let Some((k, v)) = line.split_once('=') {
                match k.trim() {
                    "aws_access_key_id" => id = Some(value(v).to_string()),
                    "aws_secret_access_key" => {
                        secret = Some(zeroize::Zeroizing::new(value(v).to_string()))
                    }
                    _ => {}
                }
            }
        }
        Some((id?, secret?))
    }

    /// How `name`'s credentials are made, when coffer has a part in it (a role, or an MFA
    /// device); `None` leaves the whole profile to the SDK.
    pub fn chain(&self, name: &str) -> Result<Option<Chain>, Error> {
        let mut roles = Vec::new();
        let mut current = name.to_string();
        // A chain longer than this loops.
        for _ in 0..32 {
            self.check(&current)?;
            let role = self
                .get(&current, "role_arn")
                // Web identity roles are the SDK's.
                .filter(|_| self.get(&current, "web_identity_token_file").is_none());
            let Some(arn) = role else {
                // The base: its own keys, SSO, a process… An MFA device it names (as
                // aws-vault reads `mfa_serial` on such a profile) comes before the roles'.
                roles.reverse();
                let own = self.get(&current, "mfa_serial").map(|serial| Device {
                    serial: serial.to_string(),
                    profile: current.clone(),
                });
                let mut chain = Chain::on(Base::Profile(current), roles);
                chain.device = own.or(chain.device);
                return Ok(chain.needed());
            };
            roles.push(Role {
                arn: arn.to_string(),
                session_name: self.get(&current, "role_session_name").map(str::to_string),
                external_id: self.get(&current, "external_id").map(str::to_string),
                duration: self
                    .get(&current, "duration_seconds")
                    .and_then(|d| d.parse().ok()),
                mfa_serial: self.get(&current, "mfa_serial").map(str::to_string),
                profile: current.clone(),
            });
            match (
                self.get(&current, "source_profile"),
                self.get(&current, "credential_source"),
            ) {
                // A profile naming itself: the role on the profile's own keys.
                (Some(source), _) if source == current => {
                    roles.reverse();
                    return Ok(Some(Chain::on(Base::Keys(current), roles)));
                }
                (Some(source), _) => current = source.to_string(),
                (None, Some(kind)) => {
                    roles.reverse();
                    return Ok(Some(Chain::on(Base::Credential(kind.into()), roles)));
                }
                (None, None) => return Err(Error::NoSource(current)),
            }
        }
        Err(Error::Loop(name.into()))
    }
}

/// Where a chain's first credentials come from.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Base {
    /// A profile the SDK resolves (keys, SSO, `credential_process`).
    Profile(String),
    /// `credential_source`: `Environment`, `Ec2InstanceMetadata` or `EcsContainer`.
    Credential(String),
    /// The long-term keys of this profile in the credentials file (a profile that is its
    /// own `source_profile`).
    Keys(String),
}

/// An MFA device, and the profile that names it (for the prompt).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Device {
    pub serial: String,
    pub profile: String,
}

/// A role a profile assumes.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Role {
    pub arn: String,
    /// `role_session_name`, when the profile sets one.
    pub session_name: Option<String>,
    pub external_id: Option<String>,
    pub duration: Option<u32>,
    pub mfa_serial: Option<String>,
    /// The profile it is configured in, or the push target or key naming it.
    pub profile: String,
}

impl Role {
    /// A role with default settings.
    #[cfg(test)]
    pub fn plain(arn: &str, by: &str) -> Role {
        Role {
            arn: arn.to_string(),
            session_name: None,
            external_id: None,
            duration: None,
            mfa_serial: None,
            profile: by.to_string(),
        }
    }

    /// The aws CLI's cache key for this role (`AssumeRoleCredentialFetcher`): the SHA-1 of
    /// its AssumeRole arguments as Python's `json.dumps(sort_keys=True)` writes them, a
    /// default (unset) session name left out.
    pub fn cache_key(&self) -> String {
        let mut args: Vec<(&str, String)> = Vec::new();
        if let Some(d) = self.duration {
            args.push(("DurationSeconds", d.to_string()));
        }
        if let Some(e) = &self.external_id {
            args.push(("ExternalId", py_json_string(e)));
        }
        args.push(("RoleArn", py_json_string(&self.arn)));
        if let Some(s) = &self.session_name {
            args.push(("RoleSessionName", py_json_string(s)));
        }
        if let Some(s) = &self.mfa_serial {
            args.push(("SerialNumber", py_json_string(s)));
        }
        let body = args
            .iter()
            .map(|(k, v)| format!("\"{k}\": {v}"))
            .collect::<Vec<_>>()
            .join(", ");
        sha1_hex(format!("{{{body}}}").as_bytes())
    }

    /// The account the role lives in.
    pub fn account(&self) -> Option<&str> {
        account_of(&self.arn)
    }
}

/// The cache key coffer keeps an MFA device's session under, beside the aws CLI's.
pub fn device_cache_key(serial: &str) -> String {
    format!("coffer-mfa-{}", sha1_hex(serial.as_bytes()))
}

/// The account of an ARN (`arn:aws:iam::ACCOUNT:…`).
pub fn account_of(arn: &str) -> Option<&str> {
    let account = arn.split(':').nth(4)?;
    (account.len() == 12 && account.bytes().all(|b| b.is_ascii_digit())).then_some(account)
}

fn sha1_hex(bytes: &[u8]) -> String {
    use sha1::Digest;
    sha1::Sha1::digest(bytes)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// A string as Python's `json.dumps` writes it (ASCII only: others as `\uXXXX`).
fn py_json_string(s: &str) -> String {
    let mut out = String::from("\"");
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            '\u{8}' => out.push_str("\\b"),
            '\u{c}' => out.push_str("\\f"),
            c if (' '..='~').contains(&c) => out.push(c),
            c => {
                let mut units = [0u16; 2];
                for u in c.encode_utf16(&mut units) {
                    out.push_str(&format!("\\u{u:04x}"));
                }
            }
        }
    }
    out.push('"');
    out
}

/// How a profile's credentials are made: the base, an MFA device's session on it, then
/// each role assumed with the credentials below it (first one first).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Chain {
    pub base: Base,
    pub device: Option<Device>,
    pub roles: Vec<Role>,
}

impl Chain {
    /// Roles on a base, the MFA device being the lowest role's: one code makes a
    /// session every role on that device is assumed from.
    fn on(base: Base, roles: Vec<Role>) -> Chain {
        let device = roles.first().and_then(|r| {
            r.mfa_serial.as_ref().map(|serial| Device {
                serial: serial.clone(),
                profile: r.profile.clone(),
            })
        });
        Chain {
            base,
            device,
            roles,
        }
    }

    fn needed(self) -> Option<Chain> {
        (self.device.is_some() || !self.roles.is_empty()).then_some(self)
    }

    /// The account the credentials end in, when a role says it.
    pub fn account(&self) -> Option<&str> {
        self.roles.last().and_then(Role::account)
    }
}

/// The sections of a shared file: in the config file `[default]` and `[profile NAME]`, in
/// the credentials file `[NAME]`.
fn parse(text: &str, is_config: bool) -> Sections {
    let mut out: Sections = HashMap::new();
    let mut current: Option<String> = None;
    for line in text.lines() {
        let line = line.trim();
        if line.is_empty() || line.starts_with('#') || line.starts_with(';') {
            continue;
        }
        if let Some(header) = line.strip_prefix('[').and_then(|l| l.split_once(']')) {
            let header = header.0.trim();
            current = if !is_config {
                // `[profile x]` is the config file's way; in the credentials file it
                // names no profile the SDK reads.
                (!header.starts_with("profile ")).then(|| header.to_string())
            } else {
                match header.strip_prefix("profile") {
                    Some(name) if name.starts_with(char::is_whitespace) => {
                        Some(name.trim().to_string())
                    }
                    _ if header == "default" => Some("default".into()),
                    // `[sso-session …]`, `[services …]`: not profiles.
                    _ => None,
                }
            };
            if let Some(c) = &current {
                out.entry(c.clone()).or_default();
            }
            continue;
        }
        if let (Some(section), Some((k, v))) = (&current, line.split_once('=')) {
            let k = k.trim();
            // Secrets are read where needed ([`Profiles::own_keys`]), never kept here.
            let v = match k {
                "aws_secret_access_key" | "aws_session_token" => "",
                _ => value(v),
            };
            // Nested settings (`s3 =` then indented lines) are kept flat; coffer reads
            // none of them.
            out.entry(section.clone())
                .or_default()
                .insert(k.to_string(), v.to_string());
        }
    }
    out
}

/// A setting's value without an inline comment (` #…` or ` ;…`), as the SDK reads it.
fn value(v: &str) -> &str {
    let v = v.trim();
    let cut = v
        .char_indices()
        .find(|&(i, c)| (c == '#' || c == ';') && v[..i].ends_with(char::is_whitespace))
        .map_or(v.len(), |(i, _)| i);
    v[..cut].trim_end()
}

#[cfg(test)]
mod tests {
    use super::*;

    const CONFIG: &str = "\
[default]
region = eu-west-1

[profile base]
region = eu-west-1

# the admin role needs MFA
[profile admin]
role_arn = arn:aws:iam::222222222222:role/admin
source_profile = base
mfa_serial = arn:aws:iam::111111111111:mfa/alice

[profile deploy]
role_arn = arn:aws:iam::333333333333:role/deploy
source_profile = admin
role_session_name = ci

[profile ci]
role_arn = arn:aws:iam::666666666666:role/ci
credential_source = Environment
mfa_serial = arn:aws:iam::111111111111:mfa/bob

[profile plain]
role_arn = arn:aws:iam::444444444444:role/plain
source_profile = base

[profile user-mfa]
mfa_serial = arn:aws:iam::111111111111:mfa/carol

[profile loop]
role_arn = arn:aws:iam::555555555555:role/loop
source_profile = loop2

[profile loop2]
role_arn = arn:aws:iam::555555555555:role/loop2
source_profile = loop

[profile lost]
role_arn = arn:aws:iam::555555555555:role/lost
source_profile = nowhere

[profile sourceless]
role_arn = arn:aws:iam::555555555555:role/x

[profile self]
role_arn = arn:aws:iam::777777777777:role/self # the team's role
source_profile = self
role_session_name =

[sso-session corp]
sso_region = eu-west-1
";

    const CREDENTIALS: &str = "[base]\naws_access_key_id = A\naws_secret_access_key = B\n[user-mfa]\naws_access_key_id = C\n[self]\naws_access_key_id = S\n[profile odd]\naws_access_key_id = O\n[creds-role]\nrole_arn = arn:aws:iam::888888888888:role/c\nsource_profile = base\n";

    fn profiles() -> Profiles {
        Profiles::from_texts(CONFIG, CREDENTIALS)
    }

    #[test]
    fn chains_go_down_to_a_base_with_the_device_of_the_lowest_role() {
        let p = profiles();
        let admin = p.chain("admin").unwrap().unwrap();
        assert_eq!(admin.base, Base::Profile("base".into()));
        assert_eq!(
            admin.device,
            Some(Device {
                serial: "arn:aws:iam::111111111111:mfa/alice".into(),
                profile: "admin".into()
            })
        );
        assert_eq!(admin.roles.len(), 1);
        assert_eq!(admin.account(), Some("222222222222"));
        // deploy sits on admin: the same device, then deploy's role.
        let deploy = p.chain("deploy").unwrap().unwrap();
        assert_eq!(deploy.device, admin.device);
        let arns: Vec<&str> = deploy.roles.iter().map(|r| r.arn.as_str()).collect();
        assert_eq!(
            arns,
            [
                "arn:aws:iam::222222222222:role/admin",
                "arn:aws:iam::333333333333:role/deploy"
            ]
        );
        assert_eq!(deploy.roles[1].session_name.as_deref(), Some("ci"));
        let ci = p.chain("ci").unwrap().unwrap();
        assert_eq!(ci.base, Base::Credential("Environment".into()));
        assert_eq!(ci.device.unwrap().profile, "ci");
        // A user profile with a device: its session, no role.
        let user = p.chain("user-mfa").unwrap().unwrap();
        assert!(user.roles.is_empty());
        assert_eq!(
            user.device.unwrap().serial,
            "arn:aws:iam::111111111111:mfa/carol"
        );
        // A profile that is its own source: the role on its own keys; an inline comment
        // is no part of the value, and an empty session name is none.
        let own = p.chain("self").unwrap().unwrap();
        assert_eq!(own.base, Base::Keys("self".into()));
        assert_eq!(own.roles[0].arn, "arn:aws:iam::777777777777:role/self");
        assert_eq!(own.roles[0].session_name, None);
        // Settings in the credentials file count too; `[profile x]` there is no profile.
        let c = p.chain("creds-role").unwrap().unwrap();
        assert_eq!(c.account(), Some("888888888888"));
        assert!(!p.exists("odd") && !p.exists("profile odd"));
        // Secrets are not kept.
        assert_eq!(p.get("base", "aws_secret_access_key"), None);
        // No role, no device: the SDK's.
        assert_eq!(p.chain("base"), Ok(None));
        assert_eq!(p.chain("default"), Ok(None));
        assert!(p.chain("plain").unwrap().unwrap().device.is_none());
    }

    #[test]
    fn unknown_looping_and_sourceless_profiles_are_errors() {
        let p = profiles();
        assert_eq!(
            p.chain("nope").unwrap_err().to_string(),
            "unknown AWS profile \"nope\" (not in config, credentials)"
        );
        assert_eq!(
            p.chain("lost").unwrap_err(),
            Error::Unknown {
                profile: "nowhere".into(),
                files: vec!["config".into(), "credentials".into()]
            }
        );
        assert_eq!(p.chain("loop").unwrap_err(), Error::Loop("loop".into()));
        assert_eq!(
            p.chain("sourceless").unwrap_err(),
            Error::NoSource("sourceless".into())
        );
        // Sections that are not profiles are not profiles; credentials-only ones are.
        assert!(!p.exists("corp") && !p.exists("sso-session corp"));
        assert!(p.exists("base") && p.exists("default"));
    }

    /// Keys as the aws CLI computes them (Python: sha1 of json.dumps(args, sort_keys=True)).
    #[test]
    fn cache_keys_are_the_aws_clis() {
        let mut admin = Role::plain("arn:aws:iam::222222222222:role/admin", "admin");
        admin.mfa_serial = Some("arn:aws:iam::123456789012:mfa/alice".into());
        assert_eq!(
            admin.cache_key(),
            "e921df19558b9f6d91dc6299c462d8bc6f1671c8"
        );
        let mut r = Role::plain("arn:aws:iam::333333333333:role/deploy", "t");
        r.session_name = Some("ci".into());
        r.duration = Some(900);
        r.external_id = Some("x\u{e9}".into());
        assert_eq!(r.cache_key(), "35fdf95891b307688b0fe24b248bed1fcc250554");
        assert_eq!(py_json_string("a\"\u{1F600}"), "\"a\\\"\\ud83d\\ude00\"");
    }

    #[test]
    fn accounts_come_from_arns() {
        assert_eq!(
            account_of("arn:aws:iam::123456789012:role/x"),
            Some("123456789012")
        );
        assert_eq!(
            account_of("arn:aws:kms:eu-west-1:123456789012:key/k"),
            Some("123456789012")
        );
        assert_eq!(account_of("alias/x"), None);
    }
}
