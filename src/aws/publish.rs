//! `sops publish` to S3: where a file goes (a pure decision) and the upload.

use std::path::Path;

use super::{reason, s3_client, Scope, Session};
use crate::{Error, Result};

/// The name a file is published under, as sops names it: the file's name, or with
/// `recursive` its path under the directory given; with `omit_extension`, less the
/// file's extension.
pub fn object_name(root: &Path, file: &Path, recursive: bool, omit_extension: bool) -> String {
    let name = if recursive {
        file.strip_prefix(root)
            .map(crate::glob::slashed)
            .unwrap_or_else(|_| file.to_string_lossy().into_owned())
    } else {
        file.file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default()
    };
    match (omit_extension, file.extension()) {
        (true, Some(ext)) => {
            let ext = format!(".{}", ext.to_string_lossy());
            name.strip_suffix(&ext).map(str::to_string).unwrap_or(name)
        }
        _ => name,
    }
}

/// Put `bytes` (an encrypted file) at `s3://bucket/key`.
pub fn put(session: &Session, bucket: &str, key: &str, bytes: Vec<u8>) -> Result<()> {
    let scope = Scope::default();
    let conf = session.config(&scope)?;
    let place = session.place(&scope, conf.region().map(|r| r.as_ref()), None);
    let s3 = s3_client(&conf);
    session.block_on(async {
        s3.put_object()
            .bucket(bucket)
            .key(key)
            .body(bytes.into())
            .send()
            .await
            .map(|_| ())
            .map_err(|e| {
                Error::Aws(super::CallError::new(
                    format!("s3 PutObject s3://{bucket}/{key}"),
                    Some(&place),
                    reason(&e, "S3"),
                ))
            })
    })
}

#[cfg(test)]
mod tests {
    use std::path::Path;

    #[test]
    fn files_are_named_as_sops_names_them() {
        let table = [
            ("dir", "dir/a/b.yaml", false, false, "b.yaml"),
            ("dir", "dir/a/b.yaml", true, false, "a/b.yaml"),
            ("dir", "dir/a/b.yaml", true, true, "a/b"),
            ("dir", "dir/a/b.enc.json", false, true, "b.enc"),
            ("dir", "dir/Makefile", false, true, "Makefile"),
            ("x", "x", false, true, "x"),
        ];
        for (root, file, recursive, omit, want) in table {
            assert_eq!(
                super::object_name(Path::new(root), Path::new(file), recursive, omit),
                want,
                "{file} recursive={recursive} omit={omit}"
            );
        }
    }
}
