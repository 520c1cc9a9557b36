"""PPO as ORZ runs it: actor and critic, GAE advantages, the clipped losses, the update mechanics."""
