"""Memory manager: working memory, workflow state, facts and semantic memory."""
