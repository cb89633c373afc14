use taskyard::http::HttpError;

pub async fn handler() -> Result<String, HttpError> {
    Err(HttpError::not_found("no such <page>"))
}
