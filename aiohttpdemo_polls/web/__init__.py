"""What every page shares: the app's settings and database on the application, reading a request
(poll, page, form, voter), poll content and its cache, errors, checks, headers, languages, compression."""
