"""AccountsFunction: tracked-account CRUD with the plan limit enforced."""
