//! Datasets, transforms and the batch loader.
