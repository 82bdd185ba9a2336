//! One module per page of the console.

pub mod alerts;
pub mod audit;
pub mod chart;
pub mod invite;
pub mod logs;
pub mod organizations;
pub mod overview;
pub mod sign_in;
pub mod team;
pub mod team_form;
pub mod teams;
pub mod usage;
pub mod users;
