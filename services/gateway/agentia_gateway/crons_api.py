"""The Agent Protocol's / LangGraph's crons endpoints, backed by the scheduler service."""

from __future__ import annotations

from fastapi import APIRouter

router = APIRouter(tags=["Crons"])
