"""The pipeline's stages (DESIGN.md §2): each declares its input and output tables and states
its per-group logic once; an engine (``mbolake.engines``) reads, groups and writes. No stage
imports another; what two stages share lives beside them (``base``, ``mbo_input``)."""
from .base import SilverFilterFirst4Hours, Stage, StageSummary
from .bronze import BronzeProcessDBN
from .gold_setup import GoldExtractSetupVectors
from .silver_approach import SilverExtractLevelApproach2m
from .silver_bars import SilverComputeBar5sFeatures
from .silver_book import SilverRebuildOrderBook
from .silver_levels import SilverAddSessionLevels
from .silver_normalize import SilverNormalizeMBO
from .training_snapshot import export_training_snapshot

# Silver and Gold in the order a session goes through them (each reads what the ones before wrote)
SILVER_GOLD_STAGES = (SilverRebuildOrderBook, SilverNormalizeMBO, SilverAddSessionLevels, SilverComputeBar5sFeatures,
                      SilverExtractLevelApproach2m, GoldExtractSetupVectors)

__all__ = ["SILVER_GOLD_STAGES", "BronzeProcessDBN", "GoldExtractSetupVectors", "SilverAddSessionLevels", "SilverComputeBar5sFeatures",
           "SilverExtractLevelApproach2m", "SilverFilterFirst4Hours", "SilverNormalizeMBO", "SilverRebuildOrderBook",
           "Stage", "StageSummary", "export_training_snapshot"]
