//! [`AppState`]: values the app shares with every task, looked up by type.

use std::any::{Any, TypeId, type_name};
use std::collections::HashMap;
use std::sync::Arc;

use crate::TaskError;

/// A map from type to one shared value of that type (a database pool, a client, settings).
#[derive(Clone, Default)]
pub struct AppState {
    values: HashMap<TypeId, Arc<dyn Any + Send + Sync>>,
}

impl AppState {
    pub(crate) fn insert<T: Send + Sync + 'static>(&mut self, value: T) {
        self.values.insert(TypeId::of::<T>(), Arc::new(value));
    }

    /// The value of type `T`, or an error saying how to provide it.
    pub fn get<T: Send + Sync + 'static>(&self) -> Result<&T, TaskError> {
        self.values
            .get(&TypeId::of::<T>())
            .and_then(|value| value.downcast_ref::<T>())
            .ok_or_else(|| {
                TaskError::permanent(format!(
                    "no shared state of type `{}`: add it with `App::state(value)`",
                    type_name::<T>()
                ))
            })
    }
}

impl std::fmt::Debug for AppState {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AppState")
            .field("values", &self.values.len())
            .finish()
    }
}
