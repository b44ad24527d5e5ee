"""The generated static site: pages (`pages`), charts (`charts`), the build (`build`), the
browser runtime from npm (`runtime`) and the local server (`serve`)."""
