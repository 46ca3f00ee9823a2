"""A model behind HTTP (the serve extra): the FastAPI app, its page, and a protocol with client deadlines."""
