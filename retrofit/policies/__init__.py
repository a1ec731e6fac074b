"""Policy networks retrofit trains itself (the reference policy) and their file format."""
