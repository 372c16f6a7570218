"""Who may do what: sign-in and roles (``auth``), CSRF and security headers
(``headers``), the sign-in rate limit (``ratelimit``) and the sign-in pages (``views``)."""
