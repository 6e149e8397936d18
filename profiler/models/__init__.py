"""Small model definitions written in plain torch (no torchvision)."""
