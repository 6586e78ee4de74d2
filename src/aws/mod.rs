//! AWS services besides KMS: reading Secrets Manager, SSM Parameter Store and S3 for
//! `render` sources.

pub mod read;
