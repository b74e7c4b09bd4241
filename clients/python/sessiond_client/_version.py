"""The package's version and the sessiond versions it is tested against (pyproject.toml
reads ``__version__`` from here: one place to bump)."""

__version__ = "0.1.0"

#: The sessiond server versions this client works with (PEP 440 specifier): the calls,
#: fields and errors of ``session.v1`` as sessiond 0.1 serves them.
SERVER_VERSIONS = ">=0.1,<0.2"
