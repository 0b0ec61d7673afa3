"""Avellaneda-Stoikov / GLFT market making toolkit."""
