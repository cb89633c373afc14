use taskyard::http::HttpError;

pub async fn handler() -> Result<String, HttpError> {
    let port: u16 = "99999".parse()?;
    Ok(port.to_string())
}
