"""Where a restore writes: creating files, special files and their content in the target directory."""
