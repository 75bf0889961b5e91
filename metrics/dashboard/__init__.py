"""The metrics dashboard in the admin (its page follows); for now, the case list filter its figures link to."""
