//! Apps, Basic credentials and tokens: the store's contract.

use crate::error::Result;
use crate::ids::{AppRef, ExternalId, OrgId};
use crate::model::*;
use async_trait::async_trait;

/// Apps, Basic credentials and tokens.
#[async_trait]
pub trait Credentials: Send + Sync {
    async fn create_app(&self, org: OrgId, name: &str, secret_hash: &str) -> Result<App>;
    /// The app a token request names, unless its organization is disabled (authentication).
    async fn find_app(&self, app_id: &ExternalId) -> Result<Option<App>>;
    /// One app of the organization, whatever its state (operator).
    async fn find_org_app(&self, org: OrgId, app_id: &ExternalId) -> Result<Option<App>>;
    async fn list_apps(&self, org: OrgId) -> Result<Vec<App>>;
    /// Replaces the app's secret and revokes every token it was issued, in one transaction.
    async fn rotate_app_secret(&self, org: OrgId, app: AppRef, secret_hash: &str) -> Result<App>;
    /// Deletes the app and its tokens; what it wrote keeps its executor id and name.
    async fn delete_app(&self, org: OrgId, app: AppRef) -> Result<()>;
    async fn list_basic_credentials(&self, org: OrgId) -> Result<Vec<BasicCredential>>;
    /// Replaces a credential's password hash (`CredentialNotFound` in another organization).
    async fn set_basic_password(
        &self,
        org: OrgId,
        username: &str,
        password_hash: &str,
    ) -> Result<BasicCredential>;
    async fn delete_basic_credential(&self, org: OrgId, username: &str) -> Result<()>;
    /// User names are unique across the server, so a Basic header names one organization.
    async fn create_basic_credential(
        &self,
        org: OrgId,
        username: &str,
        password_hash: &str,
    ) -> Result<BasicCredential>;
    /// The credential a Basic header names, unless its organization is disabled.
    async fn find_basic_credential(&self, username: &str) -> Result<Option<BasicCredential>>;
    async fn create_token(
        &self,
        org: OrgId,
        app: AppRef,
        token_hash: &str,
        expires_at: i64,
    ) -> Result<()>;
    /// Issues a token to the app only while its secret is still `secret_hash` and its
    /// organization enabled, checked in the insert itself: a rotation, deletion or disable
    /// that commits first wins, and the answer is `false`.
    async fn issue_token(
        &self,
        org: OrgId,
        app: AppRef,
        secret_hash: &str,
        token_hash: &str,
        expires_at: i64,
    ) -> Result<bool>;
    /// The token of that hash, unless its organization is disabled.
    async fn find_token(&self, token_hash: &str) -> Result<Option<TokenRecord>>;
    /// Deletes tokens that expired before `now` (Unix seconds) or were revoked and would have
    /// expired by then; returns how many.
    async fn purge_expired_tokens(&self, now: i64) -> Result<u64>;
    /// Revokes every unrevoked token of the app; answers how many.
    async fn revoke_tokens(&self, org: OrgId, app: AppRef) -> Result<u64>;
}
