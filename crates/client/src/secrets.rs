//! Custody secrets (`/v1/secrets`).

use reqwest::Method;
use superserver_wire::{PutSecretRequest, SecretInfo, SecretList};

use crate::client::Client;
use crate::error::Result;

impl Client {
    /// `PUT /v1/secrets/{name}`: creates or replaces a secret.
    pub async fn put_secret(&self, name: &str, req: &PutSecretRequest) -> Result<SecretInfo> {
        let rb = self.request(Method::PUT, &["v1", "secrets", name]).json(req);
        self.call_json(rb, "PUT /v1/secrets/{name}").await
    }

    /// `GET /v1/secrets`: names, bound hosts and users; never values.
    pub async fn secrets(&self) -> Result<SecretList> {
        self.call_json(self.request(Method::GET, &["v1", "secrets"]), "GET /v1/secrets").await
    }

    /// `GET /v1/secrets/{name}`.
    pub async fn secret(&self, name: &str) -> Result<SecretInfo> {
        self.call_json(self.request(Method::GET, &["v1", "secrets", name]), "GET /v1/secrets/{name}").await
    }

    /// `DELETE /v1/secrets/{name}`.
    pub async fn delete_secret(&self, name: &str) -> Result<()> {
        self.call_text(self.request(Method::DELETE, &["v1", "secrets", name]), "application/json").await?;
        Ok(())
    }
}
