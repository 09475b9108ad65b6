//! The sandbox drivers a runtime uses: the process driver always, and the container driver
//! when a class runs an image. Each class is served by one of them.

use std::sync::Arc;

use crate::config::{ClassConfig, Config, Handler};
use crate::model::ClassName;
use crate::sandbox::SandboxDriver;

pub struct Drivers {
    pub process: Arc<dyn SandboxDriver>,
    pub container: Option<Arc<dyn SandboxDriver>>,
}

impl Drivers {
    /// Returns the driver for a class's sandboxes. A runtime with image classes always has a
    /// container driver: it refuses to start without one.
    pub fn for_class(&self, class: &ClassConfig) -> &Arc<dyn SandboxDriver> {
        match (&class.handler, &self.container) {
            (Handler::Image { .. }, Some(container)) => container,
            _ => &self.process,
        }
    }

    /// Returns the driver for objects of the class named `name`, or the process driver for a
    /// class no longer configured.
    pub fn for_class_name(&self, config: &Config, name: &ClassName) -> &Arc<dyn SandboxDriver> {
        match config.class(name) {
            Some(class) => self.for_class(class),
            None => &self.process,
        }
    }

    pub fn all(&self) -> impl Iterator<Item = &Arc<dyn SandboxDriver>> {
        std::iter::once(&self.process).chain(self.container.as_ref())
    }
}
